// Every admin page, one lazily fetched chunk (reps and approvers never download it).
export { CardsPage } from "./Cards";
export { FlowPage, FlowsPage } from "./Flows";
export { GradingPage, SlaPage } from "./Policies";
export { RoutingPage } from "./Routing";
export { StagesPage } from "./Stages";
