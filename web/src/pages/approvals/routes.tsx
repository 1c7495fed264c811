// The approvals area's pages: added here, with their roles and navigation entries.
import type { RouteDef } from "../../app/router";
import { ApprovalPage } from "./ApprovalPage";
import { Queue } from "./Queue";

// Approvers are named by flows (legal, finance, the GM), and supervisors, directors and admins
// decide discount and escalated steps.
const APPROVERS = ["approver", "supervisor", "director", "admin"];

export const routes: RouteDef[] = [
  { path: "/approvals", component: Queue, roles: APPROVERS, nav: { label: "nav.approvals", order: 20 } },
  { path: "/approvals/:approvalId", component: ApprovalPage, roles: APPROVERS },
];
