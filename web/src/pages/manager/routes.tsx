// The manager area's pages: added here, with their roles and navigation entries.
import type { RouteDef } from "../../app/router";

export const routes: RouteDef[] = [];
