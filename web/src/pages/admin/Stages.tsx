// The stage model with each stage's gate (entry criteria), edited as JSON (validate-only first if
// wanted), and a gate dry-run against an existing deal (CheckGate: records nothing).
import { useState } from "react";
import { api, ApiError, query, type Schemas } from "../../api/client";
import { useI18n } from "../../i18n/i18n";
import { ErrorBox } from "../approvals/parts";
import { tail } from "../approvals/util";
import { AdminPage } from "./AdminNav";
import { checkList } from "./edit";
import { PolicyEditor } from "./PolicyEditor";
import "../approvals/approvals.css";
import "./admin.css";

type Model = Schemas["salesops.pipeline.v1.StageModel"];
type Criteria = Schemas["salesops.pipeline.v1.EntryCriteria"];
type Review = Schemas["salesops.pipeline.v1.GateReview"];

function criteriaText(c: Criteria | undefined): string[] {
  if (!c) return [];
  const out: string[] = [];
  for (const f of c.requiredFields ?? []) out.push(`field ${f.fieldPath}`);
  for (const e of c.requiredEvidenceTypeIds ?? []) out.push(`evidence ${e}`);
  for (const i of c.requiredChecklistItemIds ?? []) out.push(`checklist ${i}`);
  for (const a of c.requiredApprovalFlowIds ?? []) out.push(`approval ${a}`);
  if (c.rule) out.push(`rule ${JSON.stringify(c.rule)}`);
  return out;
}

export function StagesPage() {
  const { t } = useI18n();
  const [stages, setStages] = useState<string[]>([]);
  return (
    <AdminPage title={t("admin.stages.title")}>
      <DryRun stages={stages} />
      <h2>{t("admin.stages.model")}</h2>
      <PolicyEditor<Model>
        path="/v1/stageModel"
        field="stageModel"
        validateOnly
        onLoaded={(m) => setStages((m.stages ?? []).map((s) => s.stageId ?? ""))}
        check={(doc) => checkList(doc, "stages", "stageId")}
        summary={(m) => (
          <table>
            <caption className="sr-only">{t("admin.stages.model")}</caption>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">{t("admin.id")}</th>
                <th scope="col">{t("admin.name")}</th>
                <th scope="col">{t("admin.stages.probability")}</th>
                <th scope="col">{t("admin.stages.gate")}</th>
                <th scope="col">{t("admin.stages.onEntry")}</th>
              </tr>
            </thead>
            <tbody>
              {(m.stages ?? []).map((s, i) => (
                <tr key={s.stageId}>
                  <td>{i + 1}</td>
                  <td>
                    <code>{s.stageId}</code>
                  </td>
                  <td>{s.displayName}</td>
                  <td>{s.winProbabilityPercent ?? 0}%</td>
                  <td>
                    <ul className="plain">
                      {criteriaText(s.entryCriteria).map((x) => (
                        <li key={x}>{x}</li>
                      ))}
                    </ul>
                  </td>
                  <td>{(s.onEntryApprovalFlowIds ?? []).join(", ")}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      />
    </AdminPage>
  );
}

function DryRun({ stages }: { stages: string[] }) {
  const { t } = useI18n();
  const [dealId, setDealId] = useState("");
  const [to, setTo] = useState("");
  const [review, setReview] = useState<Review | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState("");

  async function run() {
    setProblem("");
    setError(null);
    if (!dealId.trim()) {
      setProblem(t("admin.dry.dealRequired"));
      return;
    }
    setBusy(true);
    try {
      const params = to === "__won" ? { toWon: true } : { toStageId: to };
      const r = await api.get<{ gateReview?: Review }>(
        `/v1/deals/${encodeURIComponent(dealId.trim())}:checkGate` + query(params),
      );
      setReview(r.gateReview ?? null);
    } catch (err) {
      setReview(null);
      setError(err instanceof ApiError ? err : new Error(String(err)));
    } finally {
      setBusy(false);
    }
  }

  const items = review?.items ?? [];
  const missing = items.filter((i) => !i.satisfied);
  return (
    <form className="dry-run" aria-labelledby="dry-h" onSubmit={(e) => (e.preventDefault(), run())} noValidate>
      <h2 id="dry-h">{t("admin.dry.title")}</h2>
      <p className="help">{t("admin.dry.help")}</p>
      <div className="grid-form">
        <label>
          {t("admin.dry.deal")}
          <input
            name="dealId"
            value={dealId}
            onChange={(e) => setDealId(e.target.value)}
            aria-invalid={!!problem}
            aria-describedby={problem ? "deal-err" : undefined}
          />
        </label>
        <label>
          {t("admin.dry.to")}
          <select name="toStage" value={to} onChange={(e) => setTo(e.target.value)}>
            <option value="">{t("admin.dry.next")}</option>
            {stages.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
            <option value="__won">{t("admin.dry.won")}</option>
          </select>
        </label>
      </div>
      {problem && (
        <p id="deal-err" className="field-error">
          {problem}
        </p>
      )}
      <button type="submit" disabled={busy} data-action="dry-run">
        {t("admin.dry.run")}
      </button>
      <ErrorBox error={error} />
      {review && (
        <div className="gate-result" role="status" data-testid="gate-result">
          <p>
            {t("admin.dry.result", {
              from: review.fromStageId ?? "",
              to: review.toWon ? t("admin.dry.won") : (review.toStageId ?? ""),
              outcome: tail(review.outcome, "GATE_OUTCOME_"),
            })}
          </p>
          <p>{missing.length ? t("admin.dry.missing", { n: missing.length }) : t("admin.dry.ready")}</p>
          <ul className="gate-items">
            {items.map((i) => (
              <li key={`${i.stageId}/${i.key}/${i.branch}`} className={i.satisfied ? "ok" : "missing"} data-satisfied={i.satisfied ? "1" : "0"}>
                {i.satisfied ? "✓" : "✗"} {t(`admin.gateKind.${tail(i.kind, "GATE_ITEM_KIND_")}`)}: {i.displayName || i.key}
                {i.detail && <span className="sub"> — {i.detail}</span>}
              </li>
            ))}
          </ul>
        </div>
      )}
    </form>
  );
}
