// The worklist's one read (my open leads, soonest SLA first), and its early start: the app asks
// for it before React renders (app/early.ts), so the request overlaps the first render instead of
// waiting for the worklist's effect to run.
import { api, query, type Schemas } from "../../api/client";

export type LeadList = Schemas["salesops.leads.v1.ListLeadsResponse"];

const OPEN = ["LEAD_STATUS_ASSIGNED", "LEAD_STATUS_WORKING"];
export const MY_LEADS_PATH =
  "/v1/leads" + query({ "filter.ownerUserIds": "me", "filter.statuses": OPEN, orderBy: "first_response.due_time", pageSize: 200 });
// An early answer older than this is not used (the worklist asks again).
const FRESH_MS = 10_000;

interface Early {
  at: number;
  answer: Promise<LeadList>;
  value?: LeadList;
}
let early: Early | null = null;

/** Start loading my leads now; the worklist's first load takes this answer. */
export function prefetchMyLeads(): void {
  if (early) return;
  const answer = api.get<LeadList>(MY_LEADS_PATH);
  const entry: Early = { at: Date.now(), answer };
  // Kept as a value too: when it is in before React's first render, the rows are in that render.
  answer.then((v) => (entry.value = v)).catch(() => undefined); // the worklist reports a failure
  early = entry;
}

/** The early answer when it has already arrived (fresh), else null; it stays to be taken. */
export function arrivedMyLeads(): LeadList | null {
  return early && early.value && Date.now() - early.at < FRESH_MS ? early.value : null;
}

/** My open leads: the early request's answer when one is fresh (taken once), else a new request. */
export function myLeads(): Promise<LeadList> {
  const taken = early;
  early = null;
  if (taken && Date.now() - taken.at < FRESH_MS) return taken.answer;
  return api.get<LeadList>(MY_LEADS_PATH);
}
