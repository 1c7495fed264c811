// A tenant policy document (grading, routing, SLA, the stage model...): read, shown by the caller's
// summary, and edited in the caller's per-field form when it has one, or as JSON (the advanced
// view, and the only one of the documents without a form). Saving sends the etag back with an
// update mask of the fields given. The JSON view runs the client checks first; the form leaves
// them to the server, whose BadRequest field violations it shows on the fields they concern. A
// stale etag reloads.
import { useEffect, useState, type ReactNode } from "react";
import { api, ApiError, query } from "../../api/client";
import { useI18n } from "../../i18n/i18n";
import { ulid } from "../../offline/ulid";
import { ErrorBox } from "../approvals/parts";
import { isStale, useLoad, violationsByField } from "../approvals/util";
import { editable, maskOf, parseDoc, type Violation } from "./edit";

type Doc = Record<string, unknown>;

export interface PolicyEditorProps<T> {
  /** REST path, e.g. "/v1/routingRules". */
  path: string;
  /** The document's field in the Get/Update response, e.g. "routingRules". */
  field: string;
  /** Client checks of the edited document (field paths as the server would name them). */
  check?: (doc: Doc) => Violation[];
  /** The document shown readably. */
  summary: (doc: T) => ReactNode;
  /** Offer "validate only" (the RPC supports validate_only). */
  validateOnly?: boolean;
  /** Called with the document as loaded (and after each save). */
  onLoaded?: (doc: T) => void;
  /** Extra query parameters of the update, e.g. {regradeOpenLeads: true}. */
  extra?: ReactNode;
  updateParams?: Record<string, string | boolean>;
  /** The update mask of an edited document (default: its top-level fields). */
  mask?: (doc: Doc) => string;
  /** A label for the save button (e.g. "save as a new version"). */
  saveLabel?: string;
  /** The per-field form of the document (the JSON view stays, as an advanced toggle). */
  form?: (props: { doc: Doc; onChange: (doc: Doc) => void; violations: Record<string, string> }) => ReactNode;
}

export function PolicyEditor<T>(props: PolicyEditorProps<T>) {
  const { path, field, check, summary, validateOnly, onLoaded, extra, updateParams, mask, saveLabel, form } = props;
  const { t, dateTime } = useI18n();
  const loaded = useLoad(() => api.get<Record<string, T>>(path).then((r) => (r[field] ?? {}) as T), [path, field]);
  const [text, setText] = useState("");
  const [editing, setEditing] = useState(false);
  const [problems, setProblems] = useState<Violation[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState("");
  const [busy, setBusy] = useState(false);
  // The form edits this object; the JSON view edits `text`. Switching views carries the edits over.
  const [draft, setDraft] = useState<Doc>({});
  const [json, setJson] = useState(!form);
  const doc = loaded.data;

  useEffect(() => {
    if (doc) {
      setText(editable(doc as Doc));
      setDraft(JSON.parse(editable(doc as Doc)) as Doc);
      onLoaded?.(doc);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [doc]);

  function toggleJson() {
    if (!json) {
      setText(JSON.stringify(draft, null, 2));
      setJson(true);
      return;
    }
    const parsed = parseDoc(text);
    if (!parsed.ok) {
      setProblems([{ field: "(json)", description: parsed.error }]);
      return;
    }
    setProblems([]);
    setDraft(parsed.value);
    setJson(false);
  }

  async function save(onlyValidate: boolean) {
    setNotice("");
    setError(null);
    let value: Doc;
    if (json) {
      const parsed = parseDoc(text);
      if (!parsed.ok) {
        setProblems([{ field: "(json)", description: parsed.error }]);
        return;
      }
      const found = check?.(parsed.value) ?? [];
      setProblems(found);
      if (found.length) return;
      value = parsed.value;
    } else {
      value = draft;
      setProblems([]);
    }
    setBusy(true);
    try {
      const params = { updateMask: (mask ?? maskOf)(value), ...(onlyValidate ? { validateOnly: true } : {}), ...updateParams };
      await api.patch(path + query(params), value, { idempotencyKey: ulid() });
      setNotice(t(onlyValidate ? "admin.validated" : "admin.saved"));
      if (!onlyValidate) {
        setEditing(false);
        loaded.reload();
      }
    } catch (err) {
      if (isStale(err)) {
        setNotice(t("admin.stale"));
        loaded.reload();
      } else setError(err instanceof ApiError ? err : new Error(String(err)));
    } finally {
      setBusy(false);
    }
  }

  const audit = (doc as { audit?: { updateTime?: string; updatedBy?: string }; version?: string } | null) ?? null;
  return (
    <div className="policy">
      {loaded.error && !doc && <ErrorBox error={loaded.error} />}
      {!doc && !loaded.error && <p>{t("app.loading")}</p>}
      {doc && (
        <>
          <p className="sub">
            {t("admin.version", { v: String(audit?.version ?? "-") })}
            {audit?.audit?.updateTime && ` · ${t("admin.updated", { time: dateTime(audit.audit.updateTime), by: audit.audit.updatedBy ?? "" })}`}
          </p>
          {summary(doc)}
          {notice && (
            <p className="notice" role="status">
              {notice}
            </p>
          )}
          {!editing ? (
            <button className="secondary" onClick={() => setEditing(true)}>
              {t("admin.edit")}
            </button>
          ) : (
            <form className="editor" onSubmit={(e) => e.preventDefault()} noValidate>
              {form && (
                <label className="choice json-toggle">
                  <input type="checkbox" name="json-view" checked={json} onChange={toggleJson} /> {t("admin.form.jsonToggle")}
                </label>
              )}
              {form && !json && form({ doc: draft, onChange: setDraft, violations: violationsByField(error) })}
              {json && (
                <>
                  <label>
                    {t("admin.json")}
                    <textarea
                      value={text}
                      onChange={(e) => setText(e.target.value)}
                      rows={18}
                      spellCheck={false}
                      aria-invalid={problems.length > 0 || !!error}
                      aria-describedby="editor-help"
                    />
                  </label>
                  <p id="editor-help" className="help">
                    {t("admin.jsonHelp")}
                  </p>
                </>
              )}
              {extra}
              {problems.length > 0 && (
                <div className="error" role="alert">
                  <p>{t("admin.fixFirst")}</p>
                  <ul className="violations">
                    {problems.map((p) => (
                      <li key={p.field + p.description} data-field={p.field}>
                        <code>{p.field}</code>: {p.description}
                      </li>
                    ))}
                  </ul>
                </div>
              )}
              <ErrorBox error={error} />
              <div className="row">
                <button type="button" onClick={() => save(false)} disabled={busy}>
                  {saveLabel ?? t("admin.save")}
                </button>
                {validateOnly && (
                  <button type="button" className="secondary" onClick={() => save(true)} disabled={busy}>
                    {t("admin.validate")}
                  </button>
                )}
                <button
                  type="button"
                  className="secondary"
                  onClick={() => {
                    setEditing(false);
                    setProblems([]);
                    setError(null);
                    setText(editable(doc as Doc));
                    setDraft(JSON.parse(editable(doc as Doc)) as Doc);
                  }}
                >
                  {t("admin.cancel")}
                </button>
              </div>
            </form>
          )}
        </>
      )}
    </div>
  );
}
