// Routing rules as a form: one fieldset per rule (in evaluation order: move up / down), its
// conditions (a lead field, "is one of", values) and its target (team, strategy, pool). Every
// input is named by its API path, so a BadRequest field violation lands on the input it concerns.
import type { Schemas } from "../../api/client";
import { useI18n } from "../../i18n/i18n";
import { CheckField, ItemTools, ListField, SelectField, TextField } from "./fields";
import { enumList, enumTails, joinList, moveItem, removeAt, replaceAt, splitList, violationAt } from "./ruleEdit";

type Rules = Schemas["salesops.leads.v1.RoutingRules"];
type Rule = Schemas["salesops.leads.v1.RoutingRule"];
type Match = NonNullable<Rule["match"]>;

export interface FormProps {
  doc: Record<string, unknown>;
  onChange: (doc: Record<string, unknown>) => void;
  violations: Record<string, string>;
}

export const STRATEGIES: NonNullable<Rule["strategy"]>[] = [
  "ROUTING_STRATEGY_WEIGHTED_ROUND_ROBIN",
  "ROUTING_STRATEGY_LEAST_LOADED",
  "ROUTING_STRATEGY_CLAIM_ONLY",
];
// The lead fields a rule may match on; enum-valued ones are typed by their tails ("A", "WEB_FORM").
const MATCH_FIELDS: { key: keyof Match; api: string; prefix?: string }[] = [
  { key: "regions", api: "regions" },
  { key: "grades", api: "grades", prefix: "LEAD_GRADE_" },
  { key: "channels", api: "channels", prefix: "LEAD_CHANNEL_" },
  { key: "productLines", api: "product_lines" },
  { key: "sourceCodes", api: "source_codes" },
  { key: "languageCodes", api: "language_codes" },
];

export const sameList = (a: string, b: string) => joinList(splitList(a)).toUpperCase() === joinList(splitList(b)).toUpperCase();

export function RoutingForm({ doc, onChange, violations }: FormProps) {
  const { t } = useI18n();
  const rules = ((doc as Rules).rules ?? []) as Rule[];
  const setRules = (next: Rule[]) => onChange({ ...doc, rules: next });
  const tools = { up: t("admin.form.up"), down: t("admin.form.down"), remove: t("admin.form.removeRule") };
  return (
    <div className="rule-form" data-testid="routing-form">
      <TextField
        path="fallback_pool_id"
        label={t("admin.form.fallbackPool")}
        value={String((doc as Rules).fallbackPoolId ?? "")}
        onChange={(v) => onChange({ ...doc, fallbackPoolId: v })}
        error={violationAt(violations, "fallback_pool_id")}
      />
      {rules.map((rule, i) => (
        <RuleFieldset
          key={i}
          index={i}
          rule={rule}
          violations={violations}
          onChange={(r) => setRules(replaceAt(rules, i, r))}
          tools={
            <ItemTools
              index={i}
              count={rules.length}
              labels={tools}
              onMove={(d) => setRules(moveItem(rules, i, d))}
              onRemove={() => setRules(removeAt(rules, i))}
            />
          }
        />
      ))}
      <button
        type="button"
        className="secondary"
        data-action="add-rule"
        onClick={() =>
          setRules([...rules, { ruleId: "", displayName: "", enabled: true, match: {}, teamPath: "", strategy: STRATEGIES[0] }])
        }
      >
        {t("admin.form.addRule")}
      </button>
    </div>
  );
}

function RuleFieldset(props: { index: number; rule: Rule; violations: Record<string, string>; onChange: (r: Rule) => void; tools: React.ReactNode }) {
  const { t } = useI18n();
  const { index: i, rule, violations, onChange } = props;
  const at = (field: string) => `rules[${i}].${field}`;
  const err = (field: string) => violationAt(violations, at(field));
  const match = (rule.match ?? {}) as Match;
  const used = MATCH_FIELDS.filter((f) => Array.isArray(match[f.key]));
  const unused = MATCH_FIELDS.filter((f) => !Array.isArray(match[f.key]));
  const setMatch = (next: Match) => onChange({ ...rule, match: next });
  return (
    <fieldset className="rule" data-rule-index={i}>
      <legend>
        {t("admin.form.rule", { n: i + 1 })} {rule.ruleId && <code>{rule.ruleId}</code>}
      </legend>
      <div className="grid-form">
        <TextField path={at("rule_id")} label={t("admin.id")} value={rule.ruleId ?? ""} onChange={(v) => onChange({ ...rule, ruleId: v })} error={err("rule_id")} />
        <TextField path={at("display_name")} label={t("admin.name")} value={rule.displayName ?? ""} onChange={(v) => onChange({ ...rule, displayName: v })} error={err("display_name")} />
      </div>
      <CheckField path={at("enabled")} label={t("admin.enabled")} checked={!!rule.enabled} onChange={(v) => onChange({ ...rule, enabled: v })} />

      <h3>{t("admin.form.conditions")}</h3>
      {!used.length && <p className="help">{t("admin.form.matchAll")}</p>}
      <ul className="plain conditions">
        {used.map((f) => {
          const list = (match[f.key] ?? []) as string[];
          const shown = f.prefix ? enumTails(f.prefix, list) : joinList(list);
          return (
            <li key={f.key} className="condition row" data-field={f.api}>
              <SelectField
                path={at(`match.${f.api}.field`)}
                label={t("admin.form.field")}
                value={f.key}
                options={[f, ...unused].map((o) => ({ value: o.key, label: t(`admin.form.match.${o.key}`) }))}
                onChange={(to) => {
                  const next: Record<string, unknown> = { ...match };
                  delete next[f.key];
                  next[to] = [];
                  setMatch(next as Match);
                }}
              />
              <span className="op">{t("admin.form.anyOf")}</span>
              <ListField
                path={at(`match.${f.api}`)}
                label={t("admin.form.values")}
                value={shown}
                same={sameList}
                error={err(`match.${f.api}`)}
                onChange={(text) => setMatch({ ...match, [f.key]: f.prefix ? enumList(f.prefix, text) : splitList(text) })}
              />
              <button
                type="button"
                className="secondary"
                data-action="remove-condition"
                aria-label={t("admin.form.removeCondition", { field: t(`admin.form.match.${f.key}`) })}
                onClick={() => {
                  const next: Record<string, unknown> = { ...match };
                  delete next[f.key];
                  setMatch(next as Match);
                }}
              >
                ✕
              </button>
            </li>
          );
        })}
      </ul>
      {unused.length > 0 && (
        <button type="button" className="secondary" data-action="add-condition" onClick={() => setMatch({ ...match, [unused[0].key]: [] })}>
          {t("admin.form.addCondition")}
        </button>
      )}

      <h3>{t("admin.form.target")}</h3>
      <div className="grid-form">
        <TextField path={at("team_path")} label={t("admin.routing.team")} value={rule.teamPath ?? ""} onChange={(v) => onChange({ ...rule, teamPath: v })} error={err("team_path")} placeholder="east/team-a" />
        <SelectField
          path={at("strategy")}
          label={t("admin.routing.strategy")}
          value={rule.strategy ?? ""}
          options={[{ value: "", label: "—" }, ...STRATEGIES.map((s) => ({ value: s, label: t(`admin.form.strategy.${s.slice(17)}`) }))]}
          onChange={(v) => onChange({ ...rule, strategy: (v || undefined) as Rule["strategy"] })}
          error={err("strategy")}
        />
        <TextField path={at("pool_id")} label={t("admin.form.pool")} value={rule.poolId ?? ""} onChange={(v) => onChange({ ...rule, poolId: v })} error={err("pool_id")} />
        <ListField
          path={at("required_skills")}
          label={t("admin.form.skills")}
          value={joinList(rule.requiredSkills)}
          same={sameList}
          error={err("required_skills")}
          onChange={(text) => onChange({ ...rule, requiredSkills: splitList(text) })}
        />
      </div>
      <CheckField path={at("include_sub_teams")} label={t("admin.form.subTeams")} checked={!!rule.includeSubTeams} onChange={(v) => onChange({ ...rule, includeSubTeams: v })} />
      <CheckField path={at("match_language")} label={t("admin.form.matchLanguage")} checked={!!rule.matchLanguage} onChange={(v) => onChange({ ...rule, matchLanguage: v })} />
      <CheckField
        path={at("allow_outside_working_hours")}
        label={t("admin.form.outsideHours")}
        checked={!!rule.allowOutsideWorkingHours}
        onChange={(v) => onChange({ ...rule, allowOutsideWorkingHours: v })}
      />
      {props.tools}
    </fieldset>
  );
}
