// Small display parts of the approvals and admin pages.
import type { Schemas } from "../../api/client";
import { useI18n } from "../../i18n/i18n";
import { major } from "./util";

type Money = Schemas["salesops.common.v1.Money"];

export function Money({ value }: { value?: Money }) {
  const { number } = useI18n();
  const n = major(value?.amountMinor as string | undefined);
  if (n === null) return <>-</>;
  return <>{number(n, { style: "currency", currency: value?.currency || "CNY", maximumFractionDigits: 0 })}</>;
}

/** An error of a call: its message and, when the server named fields, each field's violation. */
export function ErrorBox({ error }: { error: unknown }) {
  const { t } = useI18n();
  if (!error) return null;
  const e = error as { message?: string; fieldViolations?: { field: string; description: string }[] };
  const fields = e.fieldViolations ?? [];
  return (
    <div className="error" role="alert">
      <p>{t("app.error", { message: e.message ?? String(error) })}</p>
      {fields.length > 0 && (
        <ul className="violations">
          {fields.map((v) => (
            <li key={v.field} data-field={v.field}>
              <code>{v.field}</code>: {v.description}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
