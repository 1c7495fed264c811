// Grading rules as a form: the thresholds, then one fieldset per rule (its points, the weight it
// adds) with its conditions, each of a kind (a lead field compared by an operator to values, the
// source, a behaviour, form completeness, a budget range). Inputs are named by their API paths, so
// a BadRequest field violation lands on the input it concerns.
import type { Schemas } from "../../api/client";
import { useI18n } from "../../i18n/i18n";
import { CheckField, ItemTools, ListField, SelectField, TextField } from "./fields";
import { enumList, enumTails, joinList, moveItem, removeAt, replaceAt, splitList, violationAt } from "./ruleEdit";
import { sameList, type FormProps } from "./RoutingForm";

type Grading = Schemas["salesops.leads.v1.GradingRules"];
type Rule = Schemas["salesops.leads.v1.GradingRule"];
type Condition = Schemas["salesops.leads.v1.GradingCondition"];
type Kind = "field" | "source" | "behavior" | "completeness" | "budget";

const KINDS: Kind[] = ["field", "source", "behavior", "completeness", "budget"];
const OPERATORS = ["EQUALS", "NOT_EQUALS", "IN", "CONTAINS", "GREATER_OR_EQUAL", "LESS_OR_EQUAL", "PRESENT", "ABSENT"];

export function kindOf(c: Condition): Kind {
  return KINDS.find((k) => (c as Record<string, unknown>)[k] !== undefined) ?? "field";
}

function fresh(kind: Kind): Condition {
  switch (kind) {
    case "field":
      return { field: { fieldPath: "", operator: "FIELD_OPERATOR_EQUALS", values: [] } };
    case "source":
      return { source: { channels: [], sourceCodes: [] } };
    case "behavior":
      return { behavior: { eventType: "", minCount: 1 } };
    case "completeness":
      return { completeness: { minPercent: 80 } };
    case "budget":
      return { budget: { minBudget: { amountMinor: "0", currency: "CNY" } } };
  }
}

const num = (v: string) => (v.trim() === "" || Number.isNaN(Number(v)) ? 0 : Number(v));
/** Money in major units for an input ("" when unset), and back in minor units. */
const majorOf = (m?: { amountMinor?: string | number }) => (m?.amountMinor === undefined ? "" : String(Number(m.amountMinor) / 100));
const moneyOf = (v: string, currency: string) => (v.trim() === "" ? undefined : { amountMinor: String(Math.round(num(v) * 100)), currency });

export function GradingForm({ doc, onChange, violations }: FormProps) {
  const { t } = useI18n();
  const g = doc as Grading;
  const rules = (g.rules ?? []) as Rule[];
  const setRules = (next: Rule[]) => onChange({ ...doc, rules: next });
  const tools = { up: t("admin.form.up"), down: t("admin.form.down"), remove: t("admin.form.removeRule") };
  return (
    <div className="rule-form" data-testid="grading-form">
      <div className="grid-form">
        <TextField
          path="grade_a_min_score"
          type="number"
          label={t("admin.form.gradeA")}
          value={String(g.gradeAMinScore ?? 0)}
          onChange={(v) => onChange({ ...doc, gradeAMinScore: num(v) })}
          error={violationAt(violations, "grade_a_min_score")}
        />
        <TextField
          path="grade_b_min_score"
          type="number"
          label={t("admin.form.gradeB")}
          value={String(g.gradeBMinScore ?? 0)}
          onChange={(v) => onChange({ ...doc, gradeBMinScore: num(v) })}
          error={violationAt(violations, "grade_b_min_score")}
        />
        <ListField
          path="completeness_fields"
          label={t("admin.form.completeness")}
          value={joinList(g.completenessFields)}
          same={sameList}
          onChange={(text) => onChange({ ...doc, completenessFields: splitList(text) })}
          error={violationAt(violations, "completeness_fields")}
        />
      </div>
      {rules.map((rule, i) => {
        const at = (field: string) => `rules[${i}].${field}`;
        const err = (field: string) => violationAt(violations, at(field));
        const set = (r: Rule) => setRules(replaceAt(rules, i, r));
        const conditions = (rule.conditions ?? []) as Condition[];
        const setConditions = (next: Condition[]) => set({ ...rule, conditions: next });
        return (
          <fieldset className="rule" key={i} data-rule-index={i}>
            <legend>
              {t("admin.form.rule", { n: i + 1 })} {rule.ruleId && <code>{rule.ruleId}</code>}
            </legend>
            <div className="grid-form">
              <TextField path={at("rule_id")} label={t("admin.id")} value={rule.ruleId ?? ""} onChange={(v) => set({ ...rule, ruleId: v })} error={err("rule_id")} />
              <TextField path={at("display_name")} label={t("admin.name")} value={rule.displayName ?? ""} onChange={(v) => set({ ...rule, displayName: v })} />
              <TextField path={at("points")} type="number" label={t("admin.form.points")} value={String(rule.points ?? 0)} onChange={(v) => set({ ...rule, points: num(v) })} error={err("points")} />
            </div>
            <CheckField path={at("enabled")} label={t("admin.enabled")} checked={!!rule.enabled} onChange={(v) => set({ ...rule, enabled: v })} />
            <h3>{t("admin.form.conditions")}</h3>
            {!conditions.length && <p className="help">{t("admin.form.alwaysFires")}</p>}
            <ul className="plain conditions">
              {conditions.map((c, j) => (
                <li key={j} className="condition" data-kind={kindOf(c)}>
                  <ConditionFields
                    path={at(`conditions[${j}]`)}
                    condition={c}
                    violations={violations}
                    onChange={(next) => setConditions(replaceAt(conditions, j, next))}
                  />
                  <button type="button" className="secondary" data-action="remove-condition" onClick={() => setConditions(removeAt(conditions, j))}>
                    {t("admin.form.removeConditionShort")}
                  </button>
                </li>
              ))}
            </ul>
            <button type="button" className="secondary" data-action="add-condition" onClick={() => setConditions([...conditions, fresh("field")])}>
              {t("admin.form.addCondition")}
            </button>
            <ItemTools index={i} count={rules.length} labels={tools} onMove={(d) => setRules(moveItem(rules, i, d))} onRemove={() => setRules(removeAt(rules, i))} />
          </fieldset>
        );
      })}
      <button
        type="button"
        className="secondary"
        data-action="add-rule"
        onClick={() => setRules([...rules, { ruleId: "", displayName: "", enabled: true, points: 10, conditions: [] }])}
      >
        {t("admin.form.addRule")}
      </button>
    </div>
  );
}

function ConditionFields(props: { path: string; condition: Condition; violations: Record<string, string>; onChange: (c: Condition) => void }) {
  const { t } = useI18n();
  const { path, condition: c, violations, onChange } = props;
  const kind = kindOf(c);
  const err = (field: string) => violationAt(violations, `${path}.${kind}.${field}`);
  const p = (field: string) => `${path}.${kind}.${field}`;
  const kindSelect = (
    <SelectField
      path={`${path}.kind`}
      label={t("admin.form.kind")}
      value={kind}
      options={KINDS.map((k) => ({ value: k, label: t(`admin.form.kind.${k}`) }))}
      onChange={(k) => onChange(fresh(k as Kind))}
    />
  );
  if (kind === "field") {
    const f = c.field ?? {};
    return (
      <div className="row">
        {kindSelect}
        <TextField path={p("field_path")} label={t("admin.form.field")} value={f.fieldPath ?? ""} placeholder="company.industry" onChange={(v) => onChange({ field: { ...f, fieldPath: v } })} error={err("field_path")} />
        <SelectField
          path={p("operator")}
          label={t("admin.form.operator")}
          value={f.operator ?? ""}
          options={OPERATORS.map((o) => ({ value: `FIELD_OPERATOR_${o}`, label: t(`admin.form.op.${o}`) }))}
          onChange={(v) => onChange({ field: { ...f, operator: v as NonNullable<typeof f.operator> } })}
          error={err("operator")}
        />
        <ListField path={p("values")} label={t("admin.form.values")} value={joinList(f.values)} same={sameList} onChange={(text) => onChange({ field: { ...f, values: splitList(text) } })} error={err("values")} />
      </div>
    );
  }
  if (kind === "source") {
    const s = c.source ?? {};
    return (
      <div className="row">
        {kindSelect}
        <ListField
          path={p("channels")}
          label={t("admin.form.match.channels")}
          value={enumTails("LEAD_CHANNEL_", s.channels)}
          same={sameList}
          onChange={(text) => onChange({ source: { ...s, channels: enumList("LEAD_CHANNEL_", text) as typeof s.channels } })}
          error={err("channels")}
        />
        <ListField path={p("source_codes")} label={t("admin.form.match.sourceCodes")} value={joinList(s.sourceCodes)} same={sameList} onChange={(text) => onChange({ source: { ...s, sourceCodes: splitList(text) } })} error={err("source_codes")} />
      </div>
    );
  }
  if (kind === "behavior") {
    const b = c.behavior ?? {};
    return (
      <div className="row">
        {kindSelect}
        <TextField path={p("event_type")} label={t("admin.form.event")} value={b.eventType ?? ""} placeholder="pricing_page_view" onChange={(v) => onChange({ behavior: { ...b, eventType: v } })} error={err("event_type")} />
        <TextField path={p("min_count")} type="number" label={t("admin.form.minCount")} value={String(b.minCount ?? 1)} onChange={(v) => onChange({ behavior: { ...b, minCount: num(v) } })} error={err("min_count")} />
        <TextField path={p("within")} label={t("admin.form.within")} value={String(b.within ?? "")} placeholder="604800s" onChange={(v) => onChange({ behavior: { ...b, within: v || undefined } })} error={err("within")} />
      </div>
    );
  }
  if (kind === "completeness") {
    const m = c.completeness ?? {};
    return (
      <div className="row">
        {kindSelect}
        <TextField path={p("min_percent")} type="number" label={t("admin.form.minPercent")} value={String(m.minPercent ?? 0)} onChange={(v) => onChange({ completeness: { minPercent: num(v) } })} error={err("min_percent")} />
      </div>
    );
  }
  const b = c.budget ?? {};
  const currency = b.minBudget?.currency || b.maxBudget?.currency || "CNY";
  return (
    <div className="row">
      {kindSelect}
      <TextField path={p("min_budget")} type="number" label={t("admin.form.minBudget", { currency })} value={majorOf(b.minBudget)} onChange={(v) => onChange({ budget: { ...b, minBudget: moneyOf(v, currency) } })} error={err("min_budget")} />
      <TextField path={p("max_budget")} type="number" label={t("admin.form.maxBudget", { currency })} value={majorOf(b.maxBudget)} onChange={(v) => onChange({ budget: { ...b, maxBudget: moneyOf(v, currency) } })} error={err("max_budget")} />
    </div>
  );
}
