// A panel's loading / error / empty line (announced politely to screen readers).
import { useI18n } from "../../i18n/i18n";
import type { Loaded } from "./load";

export function Status({ load, empty }: { load: Loaded<unknown>; empty: boolean }) {
  const { t } = useI18n();
  if (load.error) return <p className="error" role="alert">{t("app.error", { message: load.error.message })}</p>;
  if (load.loading && !load.data) return <p role="status" className="sub">{t("mgr.loading")}</p>;
  if (empty) return <p role="status" className="sub">{t("mgr.empty")}</p>;
  return null;
}
