// Approval flows: the list, one flow (any version) with its steps, a new version (UpdateApprovalFlow
// makes one; running approvals keep theirs), and a new flow.
import { useState } from "react";
import { api, ApiError, query, type Schemas } from "../../api/client";
import { Link, navigate } from "../../app/router";
import { useI18n } from "../../i18n/i18n";
import { ulid } from "../../offline/ulid";
import { ErrorBox, Money } from "../approvals/parts";
import { tail, useLoad } from "../approvals/util";
import { AdminPage } from "./AdminNav";
import { checkList, parseDoc, type Violation } from "./edit";
import { PolicyEditor } from "./PolicyEditor";
import "../approvals/approvals.css";
import "./admin.css";

type Flow = Schemas["salesops.pipeline.v1.ApprovalFlow"];

const checkFlow = (doc: Record<string, unknown>): Violation[] => [
  ...(typeof doc.flowId === "string" && doc.flowId ? [] : [{ field: "flowId", description: "required" }]),
  ...checkList(doc, "steps", "stepKey"),
];

const TEMPLATE = {
  flowId: "",
  displayName: "",
  kind: "APPROVAL_KIND_DISCOUNT",
  trigger: { minDiscountBps: 1000 },
  steps: [{ stepKey: "manager", displayName: "Manager", approvers: { type: "APPROVER_SELECTOR_TYPE_USERS", userIds: ["gm"] } }],
};

export function FlowsPage() {
  const { t } = useI18n();
  const flows = useLoad(
    () => api.get<{ approvalFlows?: Flow[] }>("/v1/approvalFlows" + query({ includeDisabled: true, pageSize: 100 })),
    [],
  );
  const list = flows.data?.approvalFlows ?? [];
  return (
    <AdminPage title={t("admin.flows.title")}>
      {flows.error && <ErrorBox error={flows.error} />}
      {flows.data && !list.length && <p>{t("admin.flows.empty")}</p>}
      {!!list.length && (
        <table>
          <caption className="sr-only">{t("admin.flows.title")}</caption>
          <thead>
            <tr>
              <th scope="col">{t("admin.id")}</th>
              <th scope="col">{t("admin.name")}</th>
              <th scope="col">{t("admin.flows.kind")}</th>
              <th scope="col">{t("admin.flows.version")}</th>
              <th scope="col">{t("admin.flows.trigger")}</th>
              <th scope="col">{t("admin.flows.steps")}</th>
              <th scope="col">{t("admin.enabled")}</th>
            </tr>
          </thead>
          <tbody>
            {list.map((f) => (
              <tr key={f.flowId}>
                <td>
                  <Link to={`/admin/flows/${encodeURIComponent(f.flowId!)}`}>{f.flowId}</Link>
                </td>
                <td>{f.displayName}</td>
                <td>{tail(f.kind, "APPROVAL_KIND_")}</td>
                <td>{f.version}</td>
                <td>
                  <Trigger flow={f} />
                </td>
                <td>{(f.steps ?? []).length}</td>
                <td>{f.disabled ? t("admin.no") : t("admin.yes")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <NewFlow onCreated={(id) => navigate(`/admin/flows/${encodeURIComponent(id)}`)} />
    </AdminPage>
  );
}

function Trigger({ flow }: { flow: Flow }) {
  const tr = flow.trigger;
  if (!tr) return <>-</>;
  return (
    <>
      {tr.minAmount?.amountMinor && (
        <>
          ≥ <Money value={tr.minAmount} />{" "}
        </>
      )}
      {!!tr.minDiscountBps && `≥ ${(tr.minDiscountBps / 100).toFixed(1)}% `}
      {!!tr.productLines?.length && tr.productLines.join(", ")}
    </>
  );
}

function NewFlow({ onCreated }: { onCreated: (id: string) => void }) {
  const { t } = useI18n();
  const [text, setText] = useState(JSON.stringify(TEMPLATE, null, 2));
  const [problems, setProblems] = useState<Violation[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function create() {
    setError(null);
    const parsed = parseDoc(text);
    const found = parsed.ok ? checkFlow(parsed.value) : [{ field: "(json)", description: parsed.error }];
    setProblems(found);
    if (!parsed.ok || found.length) return;
    setBusy(true);
    try {
      const r = await api.post<{ approvalFlow?: Flow }>("/v1/approvalFlows", parsed.value, { idempotencyKey: ulid() });
      onCreated(r.approvalFlow?.flowId ?? String(parsed.value.flowId));
    } catch (err) {
      setError(err instanceof ApiError ? err : new Error(String(err)));
    } finally {
      setBusy(false);
    }
  }

  return (
    <details className="new-flow">
      <summary>{t("admin.flows.new")}</summary>
      <form onSubmit={(e) => (e.preventDefault(), create())} noValidate className="editor">
        <label>
          {t("admin.json")}
          <textarea value={text} onChange={(e) => setText(e.target.value)} rows={14} spellCheck={false} />
        </label>
        {problems.length > 0 && (
          <ul className="violations error" role="alert">
            {problems.map((p) => (
              <li key={p.field + p.description}>
                <code>{p.field}</code>: {p.description}
              </li>
            ))}
          </ul>
        )}
        <ErrorBox error={error} />
        <button type="submit" disabled={busy}>
          {t("admin.flows.create")}
        </button>
      </form>
    </details>
  );
}

export function FlowPage({ params }: { params: Record<string, string> }) {
  const { t } = useI18n();
  const id = params.flowId;
  const [version, setVersion] = useState("");
  const path = `/v1/approvalFlows/${encodeURIComponent(id)}`;
  const older = useLoad(
    () => (version ? api.get<{ approvalFlow?: Flow }>(path + query({ version })).then((r) => r.approvalFlow ?? null) : Promise.resolve(null)),
    [path, version],
  );
  return (
    <AdminPage title={t("admin.flows.one", { id })}>
      <Link to="/admin/flows">{t("admin.flows.back")}</Link>
      <label className="inline">
        {t("admin.flows.showVersion")}{" "}
        <input value={version} onChange={(e) => setVersion(e.target.value.replace(/\D/g, ""))} inputMode="numeric" size={4} />
      </label>
      {version ? (
        older.data ? (
          <FlowSteps flow={older.data} />
        ) : (
          older.error && <ErrorBox error={older.error} />
        )
      ) : (
        <PolicyEditor<Flow>
          path={path}
          field="approvalFlow"
          validateOnly
          mask={() => ""}
          saveLabel={t("admin.flows.saveVersion")}
          check={checkFlow}
          summary={(f) => <FlowSteps flow={f} />}
        />
      )}
    </AdminPage>
  );
}

function FlowSteps({ flow }: { flow: Flow }) {
  const { t } = useI18n();
  return (
    <div className="flow">
      <p>
        {flow.displayName} · {tail(flow.kind, "APPROVAL_KIND_")} · {t("admin.flows.version")} {flow.version} ·{" "}
        {t("admin.flows.trigger")}: <Trigger flow={flow} />
      </p>
      {flow.description && <p className="sub">{flow.description}</p>}
      <ol className="steps">
        {(flow.steps ?? []).map((s) => (
          <li key={s.stepKey} data-step={s.stepKey}>
            <strong>{s.displayName || s.stepKey}</strong> <code>{s.stepKey}</code>
            <div className="sub">
              {tail(s.approvers?.type, "APPROVER_SELECTOR_TYPE_")} {(s.approvers?.userIds ?? []).join(", ")}
              {s.approvers?.roleKey ? ` ${s.approvers.roleKey}` : ""}
              {!!s.afterStepKeys?.length && ` · ${t("admin.flows.after", { steps: s.afterStepKeys.join(", ") })}`}
              {s.dueWithin?.value ? ` · ${t("admin.flows.due", { n: s.dueWithin.value, unit: tail(s.dueWithin.unit, "TIME_UNIT_") })}` : ""}
            </div>
          </li>
        ))}
      </ol>
    </div>
  );
}
