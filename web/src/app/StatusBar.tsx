import { useEffect, useState } from "react";
import { useI18n } from "../i18n/i18n";
import { SyncBadge } from "../offline/SyncStatus";
import { InboxBadge } from "../pages/rep/Inbox";

/** Online / offline, as the browser sees it. The offline queue adds "N changes waiting to sync". */
export function StatusBar() {
  const { t } = useI18n();
  const [online, setOnline] = useState(typeof navigator === "undefined" ? true : navigator.onLine);
  useEffect(() => {
    const on = () => setOnline(true);
    const off = () => setOnline(false);
    window.addEventListener("online", on);
    window.addEventListener("offline", off);
    return () => {
      window.removeEventListener("online", on);
      window.removeEventListener("offline", off);
    };
  }, []);
  return (
    <>
      <span className={online ? "net online" : "net offline"} role="status" aria-live="polite">
        {online ? t("app.online") : t("app.offline")}
      </span>
      <SyncBadge />
      <InboxBadge />
    </>
  );
}
