// Inputs of the per-field rule forms: each labelled, named by its API path, and showing the
// violation the server (or the form) found on that path right under it.
import { useEffect, useState, type ReactNode } from "react";

function idOf(path: string): string {
  return "f-" + path.replace(/[^A-Za-z0-9]+/g, "-");
}

interface FieldProps {
  /** API path of the field, e.g. "rules[0].team_path" (names the input and finds its violation). */
  path: string;
  label: string;
  error?: string;
  children: (input: { id: string; name: string; "aria-invalid": boolean; "aria-describedby"?: string }) => ReactNode;
}

/** A labelled input with its violation under it. */
export function Field({ path, label, error, children }: FieldProps) {
  const id = idOf(path);
  return (
    <div className="field" data-path={path}>
      <label htmlFor={id}>{label}</label>
      {children({ id, name: path, "aria-invalid": !!error, "aria-describedby": error ? id + "-err" : undefined })}
      {error && (
        <p id={id + "-err"} className="field-error">
          {error}
        </p>
      )}
    </div>
  );
}

export function TextField(props: {
  path: string;
  label: string;
  value: string;
  onChange: (v: string) => void;
  error?: string;
  type?: "text" | "number";
  placeholder?: string;
}) {
  return (
    <Field path={props.path} label={props.label} error={props.error}>
      {(input) => (
        <input
          {...input}
          type={props.type ?? "text"}
          value={props.value}
          placeholder={props.placeholder}
          onChange={(e) => props.onChange(e.target.value)}
          autoComplete="off"
        />
      )}
    </Field>
  );
}

export function SelectField(props: {
  path: string;
  label: string;
  value: string;
  options: { value: string; label: string }[];
  onChange: (v: string) => void;
  error?: string;
}) {
  return (
    <Field path={props.path} label={props.label} error={props.error}>
      {(input) => (
        <select {...input} value={props.value} onChange={(e) => props.onChange(e.target.value)}>
          {props.options.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      )}
    </Field>
  );
}

export function CheckField(props: { path: string; label: string; checked: boolean; onChange: (v: boolean) => void }) {
  return (
    <label className="choice" data-path={props.path}>
      <input type="checkbox" name={props.path} checked={props.checked} onChange={(e) => props.onChange(e.target.checked)} />{" "}
      {props.label}
    </label>
  );
}

/** The buttons of one entry of a list: move up / down, remove. */
export function ItemTools(props: { index: number; count: number; onMove: (delta: number) => void; onRemove: () => void; labels: { up: string; down: string; remove: string } }) {
  return (
    <div className="row item-tools">
      <button type="button" className="secondary" onClick={() => props.onMove(-1)} disabled={props.index === 0} data-action="move-up">
        {props.labels.up}
      </button>
      <button type="button" className="secondary" onClick={() => props.onMove(1)} disabled={props.index === props.count - 1} data-action="move-down">
        {props.labels.down}
      </button>
      <button type="button" className="danger" onClick={props.onRemove} data-action="remove">
        {props.labels.remove}
      </button>
    </div>
  );
}

/**
 * A list typed as "a, b": keeps the text as typed (a trailing comma included) and hands the
 * parsed list on every change; shows a new value when it comes from elsewhere (a reload).
 */
export function ListField(props: {
  path: string;
  label: string;
  value: string;
  onChange: (text: string) => void;
  error?: string;
  placeholder?: string;
  same: (a: string, b: string) => boolean;
}) {
  const [text, setText] = useState(props.value);
  const { value, same } = props;
  useEffect(() => {
    setText((typed) => (same(typed, value) ? typed : value));
  }, [value, same]);
  return (
    <TextField
      path={props.path}
      label={props.label}
      value={text}
      error={props.error}
      placeholder={props.placeholder}
      onChange={(v) => {
        setText(v);
        props.onChange(v);
      }}
    />
  );
}
