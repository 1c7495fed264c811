// The shell's "N changes waiting to sync" and the list behind it: every queued write of the
// signed-in user, the ones the server refused with its reason, to edit (activities) or discard.
import { useEffect, useState } from "react";
import { Link, navigate } from "../app/router";
import { useI18n } from "../i18n/i18n";
import type { QueuedWrite } from "./queue";
import { outbox, owner, startSync, syncNow } from "./sync";

function useQueue(): QueuedWrite[] {
  const [items, setItems] = useState<QueuedWrite[]>([]);
  useEffect(() => {
    startSync();
    let live = true;
    const load = () => {
      const who = owner();
      if (!who) return setItems([]);
      void outbox.list(who).then((all) => live && setItems(all), () => undefined);
    };
    load();
    const off = outbox.subscribe(load);
    return () => {
      live = false;
      off();
    };
  }, []);
  return items;
}

export function SyncBadge() {
  const { t } = useI18n();
  const items = useQueue();
  if (!items.length) return null;
  const refused = items.filter((i) => i.state === "refused").length;
  return (
    <Link to="/sync" className={refused ? "sync-badge refused" : "sync-badge"} data-waiting={items.length - refused}>
      {t("rep.sync.waiting", { n: items.length - refused })}
      {refused > 0 && ` · ${t("rep.sync.refusedCount", { n: refused })}`}
    </Link>
  );
}

/** /sync: what waits, what was refused and why. */
export function SyncPage() {
  const { t, dateTime } = useI18n();
  const items = useQueue();
  const [busy, setBusy] = useState(false);

  async function retry() {
    setBusy(true);
    await syncNow().finally(() => setBusy(false));
  }

  function edit(item: QueuedWrite) {
    const lead = /^\/v1\/leads\/([^/]+)\/activities$/.exec(item.path);
    if (item.kind === "activity" && lead) navigate(`/leads/${lead[1]}/log?edit=${item.clientId}`);
  }

  return (
    <section className="rep sync" aria-labelledby="sync-h">
      <h1 id="sync-h">{t("rep.sync.title")}</h1>
      {!items.length && <p>{t("rep.sync.empty")}</p>}
      {!!items.length && (
        <button onClick={retry} disabled={busy}>
          {t("rep.sync.now")}
        </button>
      )}
      <ol className="cards">
        {items.map((item) => (
          <li key={item.clientId} className={`card queued ${item.state}`} data-client-id={item.clientId}>
            <div className="grow">
              <strong>{item.label}</strong>
              <div className="sub">
                {dateTime(item.createTime)} · {item.state === "refused" ? t("rep.sync.refused") : t("rep.sync.pending", { n: item.attempts })}
              </div>
              {item.refusal && (
                <p className="error">
                  {item.refusal.message}
                  {item.refusal.reason && ` (${item.refusal.reason})`}
                  {item.refusal.fieldViolations?.map((v) => (
                    <span key={v.field} className="sub">
                      {" "}
                      {v.field}: {v.description}
                    </span>
                  ))}
                </p>
              )}
            </div>
            <div className="actions">
              {item.kind === "activity" && (
                <button className="secondary" onClick={() => edit(item)}>
                  {t("rep.sync.edit")}
                </button>
              )}
              <button className="secondary" onClick={() => void outbox.discard(item.clientId)}>
                {t("rep.sync.discard")}
              </button>
            </div>
          </li>
        ))}
      </ol>
    </section>
  );
}
