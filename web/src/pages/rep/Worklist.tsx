// The rep's worklist (phone first): my open leads by SLA due time with a live countdown and the
// grade, then the pool with claim. A lost claim race says who won, inline, never an error page.
import { useEffect, useState } from "react";
import { api, ApiError, query, type Schemas } from "../../api/client";
import { Link } from "../../app/router";
import { useI18n } from "../../i18n/i18n";
import { ulid } from "../../offline/ulid";
import { followUpPolicy } from "./LogActivity";
import { arrivedMyLeads, myLeads, type LeadList } from "./myLeads";
import { countdown, grade, useLoad, useNow } from "./util";
import "./rep.css";

type Lead = Schemas["salesops.leads.v1.Lead"];

/** Pending SLAs first, soonest due first; then the rest by their last activity. */
export function bySla(leads: Lead[]): Lead[] {
  const due = (l: Lead) =>
    l.firstResponse?.state === "FIRST_RESPONSE_STATE_PENDING" || l.firstResponse?.state === "FIRST_RESPONSE_STATE_BREACHED"
      ? Date.parse(l.firstResponse?.dueTime ?? "") || Infinity
      : Infinity;
  return [...leads].sort((a, b) => due(a) - due(b));
}

export function GradeBadge({ value }: { value?: string }) {
  const { t } = useI18n();
  const g = grade(value);
  if (!g) return null;
  return (
    <span className={`grade grade-${g}`} title={t("rep.grade", { grade: g })}>
      {g}
    </span>
  );
}

export function Countdown({ lead }: { lead: Lead }) {
  const { t } = useI18n();
  const now = useNow();
  const fr = lead.firstResponse;
  const pending = fr?.state === "FIRST_RESPONSE_STATE_PENDING" || fr?.state === "FIRST_RESPONSE_STATE_BREACHED";
  if (!pending || !fr?.dueTime) return <span className="sla none">{t("rep.sla.none")}</span>;
  const c = countdown(fr.dueTime, now);
  return (
    <span role="timer" className={c.overdue ? "sla overdue" : c.seconds < 1800 ? "sla soon" : "sla"} data-due={fr.dueTime}>
      {c.overdue ? t("rep.sla.overdue", { time: c.text }) : t("rep.sla.left", { time: c.text })}
    </span>
  );
}

export function Worklist() {
  const { t } = useI18n();
  const mine = useLoad(myLeads, [], arrivedMyLeads);
  const leads = bySla(mine.data?.leads ?? []);
  const settled = mine.data !== null || mine.error !== null;
  useEffect(() => {
    // The budget's end point: the rows are on screen (tests/web/test_rep_budget.py reads it).
    if (mine.data && !performance.getEntriesByName("worklist:rows").length) performance.mark("worklist:rows");
  }, [mine.data]);
  useEffect(() => {
    // Keep what the visit form needs for a visit without signal (once the rows are up).
    if (!settled) return;
    const id = setTimeout(() => void followUpPolicy().catch(() => undefined), 1000);
    return () => clearTimeout(id);
  }, [settled]);
  return (
    <section className="rep worklist" aria-labelledby="worklist-h">
      <h1 id="worklist-h">{t("rep.worklist.title")}</h1>
      {mine.error && !mine.data && <p className="error" role="alert">{t("app.error", { message: mine.error.message })}</p>}
      {mine.loading && !mine.data && <p role="status">{t("app.loading")}</p>}
      {mine.data && leads.length === 0 && <p>{t("rep.worklist.empty")}</p>}
      <ul className="cards" aria-label={t("rep.worklist.title")}>
        {leads.map((lead) => (
          <li key={lead.leadId} className="card lead-row" data-lead={lead.leadId}>
            <GradeBadge value={lead.grade} />
            <div className="grow">
              <Link to={`/leads/${lead.leadId}`} className="lead-name">
                {lead.displayName || lead.company?.name || lead.leadId}
              </Link>
              <div className="sub">{lead.region}</div>
            </div>
            <Countdown lead={lead} />
          </li>
        ))}
      </ul>
      {settled && <Pool onClaimed={mine.reload} />}
    </section>
  );
}

type ClaimNote = { kind: "won" } | { kind: "lost"; winner: string } | { kind: "refused"; message: string };

/** Who holds a lead we failed to claim: the error's metadata, else the lead itself. */
async function winnerOf(leadId: string, err: ApiError): Promise<string> {
  const named = err.metadata.ownerUserId ?? err.metadata.owner_user_id ?? err.metadata.winnerUserId;
  if (named) return named;
  try {
    const got = await api.get<{ lead: Lead }>(`/v1/leads/${encodeURIComponent(leadId)}`, { signal: undefined });
    return got.lead?.ownerUserId ?? "";
  } catch {
    return ""; // not visible to us any more: "another rep"
  }
}

function Pool({ onClaimed }: { onClaimed: () => void }) {
  const { t } = useI18n();
  const pool = useLoad(
    () => api.get<LeadList>("/v1/leads" + query({ "filter.statuses": "LEAD_STATUS_IN_POOL", orderBy: "score desc", pageSize: 50 })),
    [],
  );
  const [notes, setNotes] = useState<Record<string, ClaimNote>>({});
  const [busy, setBusy] = useState<string | null>(null);
  const online = typeof navigator === "undefined" || navigator.onLine;

  async function claim(lead: Lead) {
    const id = lead.leadId!;
    setBusy(id);
    try {
      await api.post(`/v1/leads/${encodeURIComponent(id)}:claim`, {}, { idempotencyKey: ulid() });
      setNotes((n) => ({ ...n, [id]: { kind: "won" } }));
      onClaimed();
    } catch (err) {
      if (err instanceof ApiError && (err.reason === "ALREADY_CLAIMED" || err.reason === "CLAIM_LOST" || err.code === 10)) {
        const winner = await winnerOf(id, err);
        setNotes((n) => ({ ...n, [id]: { kind: "lost", winner } }));
      } else {
        setNotes((n) => ({ ...n, [id]: { kind: "refused", message: (err as Error).message } }));
      }
    } finally {
      setBusy(null);
    }
  }

  const leads = pool.data?.leads ?? [];
  return (
    <section aria-labelledby="pool-h" className="pool">
      <h2 id="pool-h">{t("rep.pool.title")}</h2>
      {!online && <p className="help">{t("rep.pool.offline")}</p>}
      {pool.data && leads.length === 0 && <p>{t("rep.pool.empty")}</p>}
      <ul className="cards">
        {leads.map((lead) => {
          const note = notes[lead.leadId!];
          return (
            <li key={lead.leadId} className="card pool-row" data-lead={lead.leadId}>
              <GradeBadge value={lead.grade} />
              <div className="grow">
                <span className="lead-name">{lead.displayName || lead.company?.name}</span>
                <div className="sub">
                  {lead.region} · {t("rep.score", { score: lead.score ?? 0 })}
                </div>
                {note && (
                  <p role="status" className={note.kind === "won" ? "ok" : "error"}>
                    {note.kind === "won"
                      ? t("rep.claim.won")
                      : note.kind === "lost"
                        ? note.winner
                          ? t("rep.claim.lostTo", { winner: note.winner })
                          : t("rep.claim.lost")
                        : t("rep.claim.refused", { message: note.message })}
                  </p>
                )}
              </div>
              {!note && (
                <button
                  onClick={() => claim(lead)}
                  disabled={busy === lead.leadId || !online || lead.callerCanClaim === false}
                  aria-label={t("rep.claim.label", { name: lead.displayName ?? "" })}
                >
                  {t("rep.claim")}
                </button>
              )}
            </li>
          );
        })}
      </ul>
    </section>
  );
}
