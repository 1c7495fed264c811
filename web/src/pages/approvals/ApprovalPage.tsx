// One approval as its approver may see it: the deal's summary, the steps, the history, and (when a
// step waits on me) approve / reject / return for changes / delegate. Each click sends a fresh action
// id (the update is idempotent by it); a stale version shows the server's refusal (its message and
// reason), reloads the approval and keeps what was typed, so the approver decides again knowingly.
import { useState } from "react";
import { api, ApiError, type Schemas } from "../../api/client";
import { Link } from "../../app/router";
import { session } from "../../auth/session";
import { useI18n } from "../../i18n/i18n";
import { ulid } from "../../offline/ulid";
import { ErrorBox, Money } from "./parts";
import { isStale, tail, useLoad, violationOf, violationsByField } from "./util";
import "./approvals.css";

type Approval = Schemas["salesops.pipeline.v1.Approval"];
type Step = Schemas["salesops.pipeline.v1.ApprovalStep"];
type Action = "approve" | "reject" | "return" | "delegate";
/** What the page says after an action: done, or refused because the approval changed meanwhile. */
type Notice = { text: string; refusal?: { message: string; reason: string } };

/** The active steps `me` may decide (assigned, or escalated to me). */
export function myActiveSteps(approval: Approval | null, me: string): Step[] {
  if (!approval || approval.state !== "APPROVAL_STATE_IN_PROGRESS") return [];
  return (approval.steps ?? []).filter(
    (s) =>
      s.state === "APPROVAL_STEP_STATE_ACTIVE" &&
      ((s.assigneeUserIds ?? []).includes(me) || (s.escalatedToUserIds ?? []).includes(me)),
  );
}

export function ApprovalPage({ params }: { params: Record<string, string> }) {
  const { t, dateTime } = useI18n();
  const id = params.approvalId;
  const me = session.claims()?.sub ?? "";
  const loaded = useLoad(
    () => api.get<{ approval?: Approval }>(`/v1/approvals/${encodeURIComponent(id)}`).then((r) => r.approval ?? null),
    [id],
  );
  const [notice, setNotice] = useState<Notice | null>(null);
  const a = loaded.data;
  const mine = myActiveSteps(a, me);

  if (!a) {
    return (
      <section className="approvals" aria-labelledby="approval-h">
        <h1 id="approval-h">{t("approvals.page.title")}</h1>
        {loaded.error ? <ErrorBox error={loaded.error} /> : <p>{t("app.loading")}</p>}
        <Link to="/approvals">{t("approvals.back")}</Link>
      </section>
    );
  }
  const state = tail(a.state, "APPROVAL_STATE_");
  return (
    <section className="approvals approval" aria-labelledby="approval-h" data-state={state}>
      <Link to="/approvals">{t("approvals.back")}</Link>
      <h1 id="approval-h">{a.title || a.approvalId}</h1>
      <p>
        <span className={`state state-${state}`} data-testid="approval-state">
          {t(`approvals.state.${state}`)}
        </span>{" "}
        <span className="sub">{t(`approvals.kind.${tail(a.kind, "APPROVAL_KIND_")}`)}</span>
      </p>
      {notice && !notice.refusal && (
        <p className="notice" role="status">
          {notice.text}
        </p>
      )}
      {notice?.refusal && (
        <div className="notice stale" role="alert" data-reason={notice.refusal.reason}>
          <p>{notice.text}</p>
          <p className="sub">{t("approvals.staleServer", { message: notice.refusal.message })}</p>
        </div>
      )}
      <dl className="facts">
        <dt>{t("approvals.amount")}</dt>
        <dd>
          <Money value={a.amount} />
        </dd>
        {!!a.discountBps && (
          <>
            <dt>{t("approvals.discount")}</dt>
            <dd>{(a.discountBps / 100).toFixed(2)}%</dd>
          </>
        )}
        <dt>{t("approvals.deal")}</dt>
        <dd>{a.dealId || "-"}</dd>
        <dt>{t("approvals.requesterLabel")}</dt>
        <dd>{a.requesterUserId}</dd>
        {!!a.productLines?.length && (
          <>
            <dt>{t("approvals.productLines")}</dt>
            <dd>{a.productLines.join(", ")}</dd>
          </>
        )}
        {a.submitTime && (
          <>
            <dt>{t("approvals.submitted")}</dt>
            <dd>{dateTime(a.submitTime)}</dd>
          </>
        )}
      </dl>
      {a.summary && <p className="summary">{a.summary}</p>}

      {mine.length > 0 && (
        <Decide
          approval={a}
          steps={mine}
          onDone={(next) => {
            setNotice(next);
            loaded.reload();
          }}
        />
      )}

      <h2>{t("approvals.steps")}</h2>
      <ol className="steps">
        {(a.steps ?? []).map((s) => {
          const st = tail(s.state, "APPROVAL_STEP_STATE_");
          return (
            <li key={s.stepKey} className={`step step-${st}`} data-step={s.stepKey}>
              <strong>{s.displayName || s.stepKey}</strong> — {t(`approvals.stepState.${st}`)}
              <div className="sub">
                {(s.assigneeUserIds ?? []).join(", ")}
                {(s.requiredApprovals ?? 0) > 1 &&
                  ` · ${t("approvals.quorum", { n: s.approvalCount ?? 0, of: s.requiredApprovals ?? 0 })}`}
                {s.dueTime && st === "ACTIVE" && ` · ${t("approvals.due", { time: dateTime(s.dueTime) })}`}
                {s.escalated && ` · ${t("approvals.escalated", { users: (s.escalatedToUserIds ?? []).join(", ") })}`}
              </div>
            </li>
          );
        })}
      </ol>

      <h2>{t("approvals.history")}</h2>
      <ol className="timeline">
        {[...(a.history ?? [])].reverse().map((h, i) => (
          <li key={h.actionId || i}>
            <span className="sub">{h.actionTime ? dateTime(h.actionTime) : ""}</span>{" "}
            <strong>{h.actorUserId || t("approvals.system")}</strong>{" "}
            {t(`approvals.action.${tail(h.type, "APPROVAL_ACTION_TYPE_")}`)}
            {h.stepKey && <span className="sub"> ({h.stepKey})</span>}
            {!!h.targetUserIds?.length && <span> → {h.targetUserIds.join(", ")}</span>}
            {h.comment && <div className="comment">“{h.comment}”</div>}
          </li>
        ))}
      </ol>
    </section>
  );
}

function Decide({ approval, steps, onDone }: { approval: Approval; steps: Step[]; onDone: (notice: Notice) => void }) {
  const { t } = useI18n();
  const [stepKey, setStepKey] = useState(steps[0]?.stepKey ?? "");
  const [comment, setComment] = useState("");
  const [delegateTo, setDelegateTo] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [local, setLocal] = useState<Record<string, string>>({});
  const server = violationsByField(error);

  async function act(action: Action) {
    const problems: Record<string, string> = {};
    if ((action === "reject" || action === "return") && !comment.trim()) problems.comment = t("approvals.reasonRequired");
    if (action === "delegate" && !delegateTo.trim()) problems.delegate_user_id = t("approvals.delegateRequired");
    setLocal(problems);
    if (Object.keys(problems).length) return;
    setBusy(true);
    setError(null);
    // One action id per click: a retry of this same request is deduplicated by the server.
    const actionId = ulid();
    const body: Record<string, unknown> = { actionId, stepKey, comment: comment.trim(), etag: approval.etag };
    if (action === "delegate") body.delegateUserId = delegateTo.trim();
    try {
      await api.post(`/v1/approvals/${encodeURIComponent(approval.approvalId!)}:${action}`, body, {
        idempotencyKey: actionId,
      });
      setComment("");
      setDelegateTo("");
      onDone({ text: t(`approvals.done.${action}`) });
    } catch (err) {
      if (isStale(err)) {
        const refusal = err as ApiError;
        onDone({ text: t("approvals.stale"), refusal: { message: refusal.message, reason: refusal.reason ?? "ABORTED" } });
      } else {
        setError(err instanceof ApiError ? err : new Error(String(err)));
      }
    } finally {
      setBusy(false);
    }
  }

  const commentError = local.comment ?? violationOf(server, "comment");
  const delegateError = local.delegate_user_id ?? violationOf(server, "delegate_user_id");
  return (
    <form className="decide" aria-labelledby="decide-h" onSubmit={(e) => e.preventDefault()} noValidate>
      <h2 id="decide-h">{t("approvals.decide")}</h2>
      {steps.length > 1 && (
        <label>
          {t("approvals.step")}
          <select value={stepKey} onChange={(e) => setStepKey(e.target.value)}>
            {steps.map((s) => (
              <option key={s.stepKey} value={s.stepKey}>
                {s.displayName || s.stepKey}
              </option>
            ))}
          </select>
        </label>
      )}
      <label>
        {t("approvals.comment")}
        <textarea
          name="comment"
          value={comment}
          onChange={(e) => setComment(e.target.value)}
          aria-invalid={!!commentError}
          aria-describedby={commentError ? "comment-err" : undefined}
          rows={3}
        />
      </label>
      {commentError && (
        <p id="comment-err" className="field-error">
          {commentError}
        </p>
      )}
      <div className="decide-buttons">
        <button type="button" onClick={() => act("approve")} disabled={busy} data-action="approve">
          {t("approvals.approve")}
        </button>
        <button type="button" className="danger" onClick={() => act("reject")} disabled={busy} data-action="reject">
          {t("approvals.reject")}
        </button>
        <button type="button" className="secondary" onClick={() => act("return")} disabled={busy} data-action="return">
          {t("approvals.return")}
        </button>
      </div>
      <details className="delegate">
        <summary>{t("approvals.delegate")}</summary>
        <label>
          {t("approvals.delegateTo")}
          <input
            name="delegate"
            value={delegateTo}
            onChange={(e) => setDelegateTo(e.target.value)}
            aria-invalid={!!delegateError}
            aria-describedby={delegateError ? "delegate-err" : undefined}
            autoComplete="off"
          />
        </label>
        {delegateError && (
          <p id="delegate-err" className="field-error">
            {delegateError}
          </p>
        )}
        <button type="button" className="secondary" onClick={() => act("delegate")} disabled={busy} data-action="delegate">
          {t("approvals.delegateSend")}
        </button>
      </details>
      <ErrorBox error={error} />
    </form>
  );
}
