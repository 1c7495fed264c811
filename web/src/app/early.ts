// What runs before React's first render: a performance mark (the worklist budget is measured from
// navigation start, see tests/web/test_rep_budget.py) and the first screen's data, asked for now
// so the request overlaps the JavaScript that renders the shell.
import { session } from "../auth/session";
import { prefetchMyLeads } from "../pages/rep/myLeads";
import { BASE } from "./router";

/** Whether the app opens on the rep's worklist (its own path, or "/" for a rep). */
function opensWorklist(path: string): boolean {
  const inner = path.startsWith(BASE) ? path.slice(BASE.length) : path;
  return inner === "/worklist" || ((inner === "/" || inner === "") && session.hasRole("rep"));
}

export function startEarly(): void {
  performance.mark("app:start");
  if (session.token() && session.hasRole("rep") && opensWorklist(window.location.pathname)) prefetchMyLeads();
}
