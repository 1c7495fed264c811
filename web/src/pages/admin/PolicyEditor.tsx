// A tenant policy document (grading, routing, SLA, the stage model...): read, shown by the caller's
// summary, and edited as JSON. Saving sends the etag back with an update mask of the fields given;
// client checks run first, the server's BadRequest field violations are listed; a stale etag reloads.
import { useEffect, useState, type ReactNode } from "react";
import { api, ApiError, query } from "../../api/client";
import { useI18n } from "../../i18n/i18n";
import { ulid } from "../../offline/ulid";
import { ErrorBox } from "../approvals/parts";
import { isStale, useLoad } from "../approvals/util";
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
}

export function PolicyEditor<T>(props: PolicyEditorProps<T>) {
  const { path, field, check, summary, validateOnly, onLoaded, extra, updateParams, mask, saveLabel } = props;
  const { t, dateTime } = useI18n();
  const loaded = useLoad(() => api.get<Record<string, T>>(path).then((r) => (r[field] ?? {}) as T), [path, field]);
  const [text, setText] = useState("");
  const [editing, setEditing] = useState(false);
  const [problems, setProblems] = useState<Violation[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState("");
  const [busy, setBusy] = useState(false);
  const doc = loaded.data;

  useEffect(() => {
    if (doc) {
      setText(editable(doc as Doc));
      onLoaded?.(doc);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [doc]);

  async function save(onlyValidate: boolean) {
    setNotice("");
    setError(null);
    const parsed = parseDoc(text);
    if (!parsed.ok) {
      setProblems([{ field: "(json)", description: parsed.error }]);
      return;
    }
    const found = check?.(parsed.value) ?? [];
    setProblems(found);
    if (found.length) return;
    setBusy(true);
    try {
      const params = { updateMask: (mask ?? maskOf)(parsed.value), ...(onlyValidate ? { validateOnly: true } : {}), ...updateParams };
      await api.patch(path + query(params), parsed.value, { idempotencyKey: ulid() });
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
