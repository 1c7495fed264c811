// The inbox page and the header's unread badge, both fed by the one live stream (inboxStream.ts).
import { useEffect, useSyncExternalStore } from "react";
import { api } from "../../api/client";
import { Link } from "../../app/router";
import { useI18n } from "../../i18n/i18n";
import { inbox, startInbox } from "./inboxStream";
import { enumTail } from "./util";
import "./rep.css";

function useInbox() {
  useEffect(() => {
    // After the page's own data: the stream is not what the first paint waits for.
    const id = setTimeout(startInbox, 800);
    return () => clearTimeout(id);
  }, []);
  return useSyncExternalStore(inbox.subscribe, inbox.snapshot);
}

export function InboxBadge() {
  const { t } = useI18n();
  const { unread } = useInbox();
  return (
    <Link to="/inbox" className="inbox-badge">
      {t("nav.inbox")}
      {!!unread && (
        <span className="count" data-unread={unread}>
          {unread}
        </span>
      )}
      <span className="sr-only">{t("rep.inbox.unread", { n: unread ?? 0 })}</span>
    </Link>
  );
}

export function Inbox() {
  const { t, dateTime } = useI18n();
  const { items, live, unread } = useInbox();

  async function markRead(itemId: string) {
    await api.post(`/v1/inbox/${encodeURIComponent(itemId)}:markRead`, {}).catch(() => undefined);
    await inbox.refreshUnread().catch(() => undefined);
  }

  return (
    <section className="rep inbox" aria-labelledby="inbox-h">
      <h1 id="inbox-h">{t("nav.inbox")}</h1>
      <p className="help" role="status">
        {live ? t("rep.inbox.live") : t("rep.inbox.connecting")} · {t("rep.inbox.unread", { n: unread ?? 0 })}
      </p>
      {!items.length && <p>{t("rep.inbox.empty")}</p>}
      <ul className="cards">
        {items.map((item) => (
          <li
            key={item.itemId}
            className={item.read ? "card inbox-item" : "card inbox-item unread"}
            data-category={item.category}
            data-subject={item.subject?.id}
          >
            <div className="grow">
              <strong>{item.title}</strong>
              <div className="sub">
                {t(`rep.category.${enumTail(item.category, "NOTIFICATION_CATEGORY_")}`)} ·{" "}
                {item.createTime ? dateTime(item.createTime) : ""}
              </div>
              {item.body && <p className="body">{item.body}</p>}
            </div>
            {!item.read && (
              <button className="secondary" onClick={() => markRead(item.itemId!)}>
                {t("rep.inbox.markRead")}
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
