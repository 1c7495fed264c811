// The rep area's pages: added here, with their roles and navigation entries.
import type { RouteDef } from "../../app/router";
import { SyncPage } from "../../offline/SyncStatus";
import { Deals } from "./Deals";
import { Duties } from "./Duties";
import { Inbox } from "./Inbox";
import { LeadPage } from "./LeadPage";
import { LogActivity } from "./LogActivity";
import { Worklist } from "./Worklist";

const REP = ["rep"];

export const routes: RouteDef[] = [
  { path: "/worklist", component: Worklist, roles: REP, nav: { label: "nav.worklist", order: 10 } },
  { path: "/deals", component: Deals, roles: REP, nav: { label: "nav.deals", order: 12 } },
  { path: "/duties", component: Duties, roles: REP, nav: { label: "nav.duties", order: 13 } },
  { path: "/leads/:leadId", component: LeadPage, roles: REP },
  { path: "/leads/:leadId/log", component: LogActivity, roles: REP },
  // Every signed-in user: the inbox (the header's badge links here) and the offline queue.
  { path: "/inbox", component: Inbox },
  { path: "/sync", component: SyncPage },
];
