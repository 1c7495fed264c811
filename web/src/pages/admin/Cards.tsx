// SOP card review: the cards waiting in review; publish one, or return it to draft with a reason.
import { useState } from "react";
import { api, ApiError, query, type Schemas } from "../../api/client";
import { useI18n } from "../../i18n/i18n";
import { ulid } from "../../offline/ulid";
import { ErrorBox } from "../approvals/parts";
import { isStale, useLoad, violationOf, violationsByField } from "../approvals/util";
import { AdminPage } from "./AdminNav";
import "../approvals/approvals.css";
import "./admin.css";

type Card = Schemas["salesops.knowledge.v1.SopCard"];

export function CardsPage() {
  const { t } = useI18n();
  const [notice, setNotice] = useState("");
  const cards = useLoad(
    () =>
      api.get<{ cards?: Card[] }>(
        "/v1/sopCards" + query({ "filter.statuses": "CARD_STATUS_IN_REVIEW", pageSize: 50 }),
      ),
    [],
  );
  const list = cards.data?.cards ?? [];
  return (
    <AdminPage title={t("admin.cards.title")}>
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      {cards.error && <ErrorBox error={cards.error} />}
      {cards.data && !list.length && <p>{t("admin.cards.empty")}</p>}
      <ul className="cards">
        {list.map((c) => (
          <Review
            key={c.cardId}
            card={c}
            onDone={(msg) => {
              setNotice(msg);
              cards.reload();
            }}
          />
        ))}
      </ul>
    </AdminPage>
  );
}

function Review({ card, onDone }: { card: Card; onDone: (msg: string) => void }) {
  const { t } = useI18n();
  const [reason, setReason] = useState("");
  const [note, setNote] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [local, setLocal] = useState("");
  const [busy, setBusy] = useState(false);
  const id = encodeURIComponent(card.cardId!);
  const reasonId = `reason-${card.cardId}`;

  async function send(action: "publish" | "returnToDraft") {
    setError(null);
    if (action === "returnToDraft" && !reason.trim()) {
      setLocal(t("admin.cards.reasonRequired"));
      return;
    }
    setLocal("");
    setBusy(true);
    const body =
      action === "publish" ? { changeNote: note.trim(), etag: card.etag } : { comment: reason.trim(), etag: card.etag };
    try {
      await api.post(`/v1/sopCards/${id}:${action}`, body, { idempotencyKey: ulid() });
      onDone(t(action === "publish" ? "admin.cards.published" : "admin.cards.returned", { title: card.title ?? "" }));
    } catch (err) {
      if (isStale(err)) onDone(t("admin.stale"));
      else setError(err instanceof ApiError ? err : new Error(String(err)));
    } finally {
      setBusy(false);
    }
  }

  const reasonError = local || violationOf(violationsByField(error), "comment");
  return (
    <li className="card sop-review" data-card={card.cardId}>
      <div className="grow">
        <h2>{card.title}</h2>
        <p className="sub">
          {card.scenario} · {t("admin.cards.author", { user: card.authorUserId ?? "" })} · v{card.version}
        </p>
        {card.summary && <p>{card.summary}</p>}
        {!!card.mustDoActions?.length && (
          <>
            <h3>{t("admin.cards.mustDo")}</h3>
            <ul>
              {card.mustDoActions.map((a, i) => (
                <li key={i}>{a.text}</li>
              ))}
            </ul>
          </>
        )}
        {!!card.taboos?.length && (
          <>
            <h3>{t("admin.cards.taboos")}</h3>
            <ul>
              {card.taboos.map((x, i) => (
                <li key={i}>{x}</li>
              ))}
            </ul>
          </>
        )}
        <form onSubmit={(e) => e.preventDefault()} noValidate className="editor">
          <label>
            {t("admin.cards.changeNote")}
            <input value={note} onChange={(e) => setNote(e.target.value)} />
          </label>
          <label>
            {t("admin.cards.reason")}
            <textarea
              value={reason}
              onChange={(e) => setReason(e.target.value)}
              rows={2}
              aria-invalid={!!reasonError}
              aria-describedby={reasonError ? reasonId : undefined}
            />
          </label>
          {reasonError && (
            <p id={reasonId} className="field-error">
              {reasonError}
            </p>
          )}
          <ErrorBox error={error} />
          <div className="row">
            <button type="button" onClick={() => send("publish")} disabled={busy} data-action="publish">
              {t("admin.cards.publish")}
            </button>
            <button type="button" className="secondary" onClick={() => send("returnToDraft")} disabled={busy} data-action="return">
              {t("admin.cards.return")}
            </button>
          </div>
        </form>
      </div>
    </li>
  );
}
