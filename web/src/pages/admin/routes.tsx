// The admin area's pages: added here, with their roles and navigation entries.
import { navigate, type RouteDef } from "../../app/router";
import { useEffect } from "react";
import { CardsPage } from "./Cards";
import { FlowPage, FlowsPage } from "./Flows";
import { GradingPage, SlaPage } from "./Policies";
import { RoutingPage } from "./Routing";
import { StagesPage } from "./Stages";

const ADMIN = ["admin"];

/** "/admin" opens the first section. */
function AdminHome() {
  useEffect(() => navigate("/admin/routing", true), []);
  return null;
}

export const routes: RouteDef[] = [
  { path: "/admin", component: AdminHome, roles: ADMIN, nav: { label: "nav.admin", order: 40 } },
  { path: "/admin/grading", component: GradingPage, roles: ADMIN },
  { path: "/admin/routing", component: RoutingPage, roles: ADMIN },
  { path: "/admin/sla", component: SlaPage, roles: ADMIN },
  { path: "/admin/stages", component: StagesPage, roles: ADMIN },
  { path: "/admin/flows", component: FlowsPage, roles: ADMIN },
  { path: "/admin/flows/:flowId", component: FlowPage, roles: ADMIN },
  { path: "/admin/cards", component: CardsPage, roles: ADMIN },
];
