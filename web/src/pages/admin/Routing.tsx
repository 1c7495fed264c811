// Routing rules, and "simulate": the routing of a hypothetical lead with its explain trace (rules
// tried with each condition, candidates with scores and skip reasons), with the saved rules or the
// draft being edited (SimulateRouting records nothing).
import { useState } from "react";
import { api, ApiError, type Schemas } from "../../api/client";
import { useI18n } from "../../i18n/i18n";
import { ErrorBox } from "../approvals/parts";
import { tail, violationOf, violationsByField } from "../approvals/util";
import { AdminPage } from "./AdminNav";
import { checkList, parseDoc } from "./edit";
import { PolicyEditor } from "./PolicyEditor";
import { RoutingForm } from "./RoutingForm";
import "../approvals/approvals.css";
import "./admin.css";

type Rules = Schemas["salesops.leads.v1.RoutingRules"];
type Decision = Schemas["salesops.leads.v1.AssignmentDecision"];

const GRADES = ["LEAD_GRADE_A", "LEAD_GRADE_B", "LEAD_GRADE_C"];
const CHANNELS = [
  "LEAD_CHANNEL_WEB_FORM",
  "LEAD_CHANNEL_CALL_CENTER",
  "LEAD_CHANNEL_STORE_WALK_IN",
  "LEAD_CHANNEL_IMPORT",
  "LEAD_CHANNEL_PARTNER_API",
  "LEAD_CHANNEL_MANUAL",
  "LEAD_CHANNEL_OTHER",
];

export function RoutingPage() {
  const { t } = useI18n();
  return (
    <AdminPage title={t("admin.routing.title")}>
      <Simulate />
      <h2>{t("admin.routing.rules")}</h2>
      <PolicyEditor<Rules>
        path="/v1/routingRules"
        field="routingRules"
        check={(doc) => checkList(doc, "rules", "ruleId", ["teamPath", "strategy"])}
        form={(props) => <RoutingForm {...props} />}
        summary={(r) => (
          <>
            <p>{t("admin.routing.fallback", { pool: r.fallbackPoolId ?? "" })}</p>
            <table>
              <caption className="sr-only">{t("admin.routing.rules")}</caption>
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">{t("admin.id")}</th>
                  <th scope="col">{t("admin.name")}</th>
                  <th scope="col">{t("admin.enabled")}</th>
                  <th scope="col">{t("admin.routing.match")}</th>
                  <th scope="col">{t("admin.routing.team")}</th>
                  <th scope="col">{t("admin.routing.strategy")}</th>
                </tr>
              </thead>
              <tbody>
                {(r.rules ?? []).map((rule, i) => (
                  <tr key={rule.ruleId}>
                    <td>{i + 1}</td>
                    <td>
                      <code>{rule.ruleId}</code>
                    </td>
                    <td>{rule.displayName}</td>
                    <td>{rule.enabled ? t("admin.yes") : t("admin.no")}</td>
                    <td className="json-cell">{JSON.stringify(rule.match ?? {})}</td>
                    <td>{rule.teamPath}</td>
                    <td>{tail(rule.strategy, "ROUTING_STRATEGY_")}</td>
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

function Simulate() {
  const { t } = useI18n();
  const [region, setRegion] = useState("east/shanghai");
  const [grade, setGrade] = useState("LEAD_GRADE_A");
  const [channel, setChannel] = useState("LEAD_CHANNEL_WEB_FORM");
  const [source, setSource] = useState("");
  const [products, setProducts] = useState("");
  const [language, setLanguage] = useState("zh-CN");
  const [draft, setDraft] = useState("");
  const [result, setResult] = useState<Decision | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const violations = violationsByField(error);

  async function run() {
    setBusy(true);
    setError(null);
    const body: Record<string, unknown> = {
      region: region.trim(),
      grade,
      channel,
      sourceCode: source.trim(),
      productLines: products.split(",").map((p) => p.trim()).filter(Boolean),
      languageCode: language.trim(),
    };
    if (draft.trim()) {
      const parsed = parseDoc(draft);
      if (!parsed.ok) {
        setError(new Error(parsed.error));
        setBusy(false);
        return;
      }
      body.routingRules = parsed.value;
    }
    try {
      const r = await api.post<{ decision?: Decision }>("/v1/routingRules:simulate", body);
      setResult(r.decision ?? null);
    } catch (err) {
      setResult(null);
      setError(err instanceof ApiError ? err : new Error(String(err)));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="simulate" aria-labelledby="sim-h" onSubmit={(e) => (e.preventDefault(), run())} noValidate>
      <h2 id="sim-h">{t("admin.sim.title")}</h2>
      <p className="help">{t("admin.sim.help")}</p>
      <div className="grid-form">
        <label>
          {t("admin.sim.region")}
          <input name="region" value={region} onChange={(e) => setRegion(e.target.value)} aria-invalid={!!violationOf(violations, "region")} />
        </label>
        <label>
          {t("admin.grade")}
          <select name="grade" value={grade} onChange={(e) => setGrade(e.target.value)}>
            {GRADES.map((g) => (
              <option key={g} value={g}>
                {tail(g, "LEAD_GRADE_")}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t("admin.sim.channel")}
          <select name="channel" value={channel} onChange={(e) => setChannel(e.target.value)}>
            {CHANNELS.map((c) => (
              <option key={c} value={c}>
                {tail(c, "LEAD_CHANNEL_")}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t("admin.sim.source")}
          <input name="source" value={source} onChange={(e) => setSource(e.target.value)} />
        </label>
        <label>
          {t("admin.sim.products")}
          <input name="products" value={products} onChange={(e) => setProducts(e.target.value)} />
        </label>
        <label>
          {t("admin.sim.language")}
          <input name="language" value={language} onChange={(e) => setLanguage(e.target.value)} />
        </label>
      </div>
      <details>
        <summary>{t("admin.sim.draft")}</summary>
        <label>
          {t("admin.sim.draftLabel")}
          <textarea value={draft} onChange={(e) => setDraft(e.target.value)} rows={8} spellCheck={false} />
        </label>
      </details>
      <button type="submit" disabled={busy} data-action="simulate">
        {t("admin.sim.run")}
      </button>
      <ErrorBox error={error} />
      {result && <Trace decision={result} />}
    </form>
  );
}

export function Trace({ decision: d }: { decision: Decision }) {
  const { t, number } = useI18n();
  return (
    <div className="trace" role="region" aria-label={t("admin.sim.trace")} data-testid="explain-trace">
      <p className="summary">
        <strong>{d.winnerUserId ? t("admin.sim.winner", { user: d.winnerUserId }) : t("admin.sim.pool", { pool: d.poolId ?? "" })}</strong>
      </p>
      <p>{d.summary}</p>
      <h3>{t("admin.sim.rulesTried")}</h3>
      <ol className="rules-tried">
        {(d.rulesTried ?? []).map((r) => (
          <li key={r.ruleId} className={r.matched ? "matched" : "unmatched"} data-rule={r.ruleId}>
            <code>{r.ruleId}</code> {r.displayName} — {r.matched ? t("admin.sim.matched") : t("admin.sim.notMatched")}
            {!!r.conditions?.length && (
              <ul>
                {r.conditions.map((c, i) => (
                  <li key={i}>
                    {c.passed ? "✓" : "✗"} {c.field}: {t("admin.sim.expected", { expected: c.expected ?? "", actual: c.actual ?? "" })}
                  </li>
                ))}
              </ul>
            )}
          </li>
        ))}
      </ol>
      {!!d.candidates?.length && (
        <table>
          <caption>{t("admin.sim.candidates", { team: d.teamPath ?? "", strategy: tail(d.strategy, "ROUTING_STRATEGY_") })}</caption>
          <thead>
            <tr>
              <th scope="col">{t("admin.sim.rank")}</th>
              <th scope="col">{t("admin.sim.rep")}</th>
              <th scope="col">{t("admin.sim.load")}</th>
              <th scope="col">{t("admin.sim.score")}</th>
              <th scope="col">{t("admin.sim.skipped")}</th>
            </tr>
          </thead>
          <tbody>
            {d.candidates.map((c) => (
              <tr key={c.userId} className={c.eligible ? "" : "skipped"}>
                <td>{c.rank || "-"}</td>
                <td>{c.displayName || c.userId}</td>
                <td>
                  {c.openLeadCount ?? 0}
                  {c.capacity ? ` / ${c.capacity}` : ""}
                </td>
                <td>{number(c.score ?? 0, { maximumFractionDigits: 3 })}</td>
                <td>{(c.skipReasons ?? []).map((s) => tail(s, "CANDIDATE_SKIP_REASON_")).join(", ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
