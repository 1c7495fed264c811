// Grading rules and SLA policies: each a tenant document, summarised as a table; grading rules are
// edited in a per-field form (JSON as the advanced view), SLA policies as JSON.
import { useState } from "react";
import type { Schemas } from "../../api/client";
import { useI18n } from "../../i18n/i18n";
import { tail } from "../approvals/util";
import { AdminPage } from "./AdminNav";
import { checkList } from "./edit";
import { GradingForm } from "./GradingForm";
import { PolicyEditor } from "./PolicyEditor";
import "../approvals/approvals.css";
import "./admin.css";

type Grading = Schemas["salesops.leads.v1.GradingRules"];
type Sla = Schemas["salesops.leads.v1.SlaPolicies"];

export function GradingPage() {
  const { t } = useI18n();
  const [regrade, setRegrade] = useState(false);
  return (
    <AdminPage title={t("admin.grading.title")}>
      <PolicyEditor<Grading>
        path="/v1/gradingRules"
        field="gradingRules"
        check={(doc) => [
          ...checkList(doc, "rules", "ruleId"),
          ...(Number(doc.gradeAMinScore ?? 0) < Number(doc.gradeBMinScore ?? 0)
            ? [{ field: "gradeAMinScore", description: t("admin.grading.aOverB") }]
            : []),
        ]}
        form={(props) => <GradingForm {...props} />}
        updateParams={regrade ? { regradeOpenLeads: true } : undefined}
        extra={
          <label className="choice">
            <input type="checkbox" checked={regrade} onChange={(e) => setRegrade(e.target.checked)} />{" "}
            {t("admin.grading.regrade")}
          </label>
        }
        summary={(g) => (
          <>
            <p>{t("admin.grading.thresholds", { a: g.gradeAMinScore ?? 0, b: g.gradeBMinScore ?? 0 })}</p>
            <table>
              <caption className="sr-only">{t("admin.grading.title")}</caption>
              <thead>
                <tr>
                  <th scope="col">{t("admin.id")}</th>
                  <th scope="col">{t("admin.name")}</th>
                  <th scope="col">{t("admin.enabled")}</th>
                  <th scope="col">{t("admin.grading.points")}</th>
                  <th scope="col">{t("admin.grading.conditions")}</th>
                </tr>
              </thead>
              <tbody>
                {(g.rules ?? []).map((r) => (
                  <tr key={r.ruleId}>
                    <td>
                      <code>{r.ruleId}</code>
                    </td>
                    <td>{r.displayName}</td>
                    <td>{r.enabled ? t("admin.yes") : t("admin.no")}</td>
                    <td>{r.points}</td>
                    <td className="json-cell">{JSON.stringify(r.conditions ?? [])}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      />
    </AdminPage>
  );
}

export function SlaPage() {
  const { t } = useI18n();
  return (
    <AdminPage title={t("admin.sla.title")}>
      <PolicyEditor<Sla>
        path="/v1/slaPolicies"
        field="slaPolicies"
        check={(doc) => checkList(doc, "policies", "grade", ["responseWindow"])}
        summary={(s) => (
          <table>
            <caption className="sr-only">{t("admin.sla.title")}</caption>
            <thead>
              <tr>
                <th scope="col">{t("admin.grade")}</th>
                <th scope="col">{t("admin.enabled")}</th>
                <th scope="col">{t("admin.sla.window")}</th>
                <th scope="col">{t("admin.sla.reminder")}</th>
                <th scope="col">{t("admin.sla.breach")}</th>
                <th scope="col">{t("admin.sla.maxReassign")}</th>
              </tr>
            </thead>
            <tbody>
              {(s.policies ?? []).map((p) => (
                <tr key={p.grade}>
                  <td>{tail(p.grade, "LEAD_GRADE_")}</td>
                  <td>{p.enabled ? t("admin.yes") : t("admin.no")}</td>
                  <td>{p.responseWindow}</td>
                  <td>{p.reminderBefore}</td>
                  <td>
                    {tail(p.breachAction, "SLA_BREACH_ACTION_")}
                    {p.escalateOnBreach ? ` · ${t("admin.sla.escalate")}` : ""}
                  </td>
                  <td>{p.maxReassignments ?? 0}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      />
    </AdminPage>
  );
}
