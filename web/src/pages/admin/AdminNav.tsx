// The admin area's own tabs (one entry in the main navigation, the sections here).
import { Link, useLocation } from "../../app/router";
import { useI18n } from "../../i18n/i18n";

const SECTIONS = ["grading", "routing", "sla", "stages", "flows", "cards"] as const;

export function AdminNav() {
  const { t } = useI18n();
  const here = useLocation().split("?")[0];
  return (
    <nav className="admin-tabs" aria-label={t("admin.sections")}>
      {SECTIONS.map((s) => {
        const to = `/admin/${s}`;
        const current = here === to || here.startsWith(to + "/");
        return (
          <Link key={s} to={to} aria-current={current ? "page" : undefined}>
            {t(`admin.tab.${s}`)}
          </Link>
        );
      })}
    </nav>
  );
}

export function AdminPage({ title, children }: { title: string; children: React.ReactNode }) {
  return (
    <section className="admin" aria-labelledby="admin-h">
      <AdminNav />
      <h1 id="admin-h">{title}</h1>
      {children}
    </section>
  );
}
