// Log a call or a visit, with or without signal: a GPS check-in (graceful when refused: the rep
// types where they are), photo references (name, type, size, SHA-256: the activity contract
// carries references, there is no upload), the tenant's mandatory action units, the next step.
// The write goes through the offline queue with a client-made activity id: exactly once.
import { useEffect, useState, type FormEvent } from "react";
import { api, type Schemas } from "../../api/client";
import { navigate, searchParam } from "../../app/router";
import { useI18n } from "../../i18n/i18n";
import { outbox, submitWrite } from "../../offline/sync";
import { ulid } from "../../offline/ulid";
import { useLoad } from "./util";
import "./rep.css";

type Activity = Schemas["salesops.leads.v1.Activity"];
type Policy = Schemas["salesops.leads.v1.FollowUpPolicy"];
type Unit = Schemas["salesops.leads.v1.ActionUnitDefinition"];
type AttachmentRef = Schemas["salesops.common.v1.AttachmentRef"];
type GeoPoint = Schemas["salesops.common.v1.GeoPoint"];

const TYPES = ["ACTIVITY_TYPE_VISIT", "ACTIVITY_TYPE_CALL"] as const;
const OUTCOMES = [
  "ACTIVITY_OUTCOME_REACHED",
  "ACTIVITY_OUTCOME_INTERESTED",
  "ACTIVITY_OUTCOME_MEETING_BOOKED",
  "ACTIVITY_OUTCOME_QUALIFIED",
  "ACTIVITY_OUTCOME_NOT_INTERESTED",
  "ACTIVITY_OUTCOME_NOT_REACHED",
  "ACTIVITY_OUTCOME_CALLBACK_REQUESTED",
];

/** A reference to a photo on the device: what the contract carries (no binary upload). */
export async function photoRef(file: File): Promise<AttachmentRef> {
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  const sha256 = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return {
    fileName: file.name,
    contentType: file.type || "application/octet-stream",
    sizeBytes: String(file.size),
    sha256,
    uri: `device-photo://sha256/${sha256}`,
  };
}

type Geo = { state: "none" } | { state: "asking" } | { state: "ok"; point: GeoPoint } | { state: "failed"; why: string };

function locate(): Promise<GeoPoint> {
  return new Promise((resolve, reject) => {
    if (!("geolocation" in navigator)) return reject(new Error("unsupported"));
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ latitude: p.coords.latitude, longitude: p.coords.longitude, accuracyM: p.coords.accuracy }),
      (e) => reject(new Error(e.code === e.PERMISSION_DENIED ? "denied" : e.code === e.TIMEOUT ? "timeout" : "unavailable")),
      { enableHighAccuracy: true, timeout: 15_000, maximumAge: 60_000 },
    );
  });
}

const POLICY_KEY = "salesops.followUpPolicy";

/**
 * The tenant's follow-up policy (mandatory action units), and the last one seen when there is no
 * signal: the visit form must work in the field. The worklist calls it too, to keep it warm.
 */
export async function followUpPolicy(): Promise<{ followUpPolicy?: Policy }> {
  try {
    const got = await api.get<{ followUpPolicy?: Policy }>("/v1/followUpPolicy");
    localStorage.setItem(POLICY_KEY, JSON.stringify(got));
    return got;
  } catch (err) {
    const kept = localStorage.getItem(POLICY_KEY);
    if (kept) return JSON.parse(kept) as { followUpPolicy?: Policy };
    throw err;
  }
}

function tomorrow(): string {
  const d = new Date(Date.now() + 86_400_000);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

export function LogActivity({ params }: { params: Record<string, string> }) {
  const { t } = useI18n();
  const leadId = params.leadId;
  const editing = searchParam("edit");
  const policy = useLoad(followUpPolicy, []);
  const [type, setType] = useState<(typeof TYPES)[number]>("ACTIVITY_TYPE_VISIT");
  const [outcome, setOutcome] = useState(OUTCOMES[0]);
  const [summary, setSummary] = useState("");
  const [nextAction, setNextAction] = useState("");
  const [nextDate, setNextDate] = useState(tomorrow());
  const [address, setAddress] = useState("");
  const [geo, setGeo] = useState<Geo>({ state: "none" });
  const [photos, setPhotos] = useState<AttachmentRef[]>([]);
  const [units, setUnits] = useState<Record<string, { done: boolean; note: string }>>({});
  const [activityId, setActivityId] = useState(ulid);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    // Editing a refused or waiting write from the sync list: start from what was queued.
    if (!editing) return;
    void outbox.get(editing).then((item) => {
      const a = item?.body as Activity | undefined;
      if (!a) return;
      setActivityId(a.activityId ?? ulid());
      if (a.activityType === "ACTIVITY_TYPE_CALL" || a.activityType === "ACTIVITY_TYPE_VISIT") setType(a.activityType);
      setOutcome(a.outcome ?? OUTCOMES[0]);
      setSummary(a.summary ?? "");
      setNextAction(a.nextStep?.action ?? "");
      const d = a.nextStep?.dueDate;
      if (d?.year) setNextDate(`${d.year}-${String(d.month).padStart(2, "0")}-${String(d.day).padStart(2, "0")}`);
      setAddress(a.visit?.checkIn?.address ?? "");
      setPhotos(a.visit?.checkIn?.photos ?? []);
      const loc = a.visit?.checkIn?.location;
      if (loc) setGeo({ state: "ok", point: loc });
      setUnits(Object.fromEntries((a.actionUnits ?? []).map((u) => [u.unitId!, { done: !!u.done, note: u.note ?? "" }])));
    });
  }, [editing]);

  const p = policy.data?.followUpPolicy;
  const applicable: Unit[] = (p?.actionUnits ?? []).filter((u) =>
    (u.activityTypes?.length ? u.activityTypes : ["ACTIVITY_TYPE_VISIT"]).includes(type),
  );
  const nextRequired = !p?.allowMissingNextStep;

  async function checkIn() {
    setGeo({ state: "asking" });
    try {
      setGeo({ state: "ok", point: await locate() });
    } catch (err) {
      setGeo({ state: "failed", why: (err as Error).message });
    }
  }

  async function addPhotos(files: FileList | null) {
    if (!files) return;
    const refs = await Promise.all([...files].map(photoRef));
    setPhotos((p) => [...p, ...refs]);
  }

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    const now = new Date().toISOString();
    const [y, m, d] = nextDate.split("-").map(Number);
    const body: Activity = {
      activityId,
      activityType: type,
      state: "ACTIVITY_STATE_COMPLETED",
      occurTime: now,
      outcome: outcome as Activity["outcome"],
      summary,
      nextStep: nextAction ? { action: nextAction, dueDate: { year: y, month: m, day: d } } : undefined,
      actionUnits: applicable.map((u) => ({
        unitId: u.unitId,
        done: !!units[u.unitId!]?.done,
        doneTime: units[u.unitId!]?.done ? now : undefined,
        note: units[u.unitId!]?.note || undefined,
        attachments: u.evidence === "EVIDENCE_KIND_ATTACHMENT" ? photos : undefined,
      })),
    };
    if (type === "ACTIVITY_TYPE_VISIT") {
      body.visit = {
        checkIn: {
          checkInTime: now,
          address: address || undefined,
          location: geo.state === "ok" ? geo.point : undefined,
          photos,
        },
      };
    }
    const label = `${t(`rep.type.${type.slice(14)}`)} · ${summary.slice(0, 40)}`;
    try {
      if (editing) {
        await outbox.edit(editing, body, label);
        navigate("/sync");
        return;
      }
      const result = await submitWrite({
        method: "POST",
        path: `/v1/leads/${encodeURIComponent(leadId)}/activities`,
        body,
        label,
        kind: "activity",
        clientId: activityId,
      });
      if (result.kind === "refused") {
        const r = result.item.refusal;
        setMessage({ ok: false, text: t("rep.log.refused", { reason: r?.fieldViolations?.[0]?.description ?? r?.message ?? "" }) });
        await outbox.discard(result.item.clientId); // shown here, fixed here: not left in the sync list
        setActivityId(ulid());
      } else {
        setMessage({ ok: true, text: result.kind === "sent" ? t("rep.log.sent") : t("rep.log.queued") });
        if (result.kind === "sent") navigate(`/leads/${leadId}`);
      }
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="rep log" onSubmit={submit} aria-labelledby="log-h">
      <h1 id="log-h">{t("rep.log.title")}</h1>
      <fieldset>
        <legend>{t("rep.log.type")}</legend>
        {TYPES.map((ty) => (
          <label key={ty} className="choice">
            <input type="radio" name="type" value={ty} checked={type === ty} onChange={() => setType(ty)} />
            {t(`rep.type.${ty.slice(14)}`)}
          </label>
        ))}
      </fieldset>
      <label>
        {t("rep.log.outcome")}
        <select value={outcome} onChange={(e) => setOutcome(e.target.value)}>
          {OUTCOMES.map((o) => (
            <option key={o} value={o}>
              {t(`rep.outcome.${o.slice(17)}`)}
            </option>
          ))}
        </select>
      </label>
      <label>
        {t("rep.log.summary")}
        <textarea name="summary" rows={3} value={summary} onChange={(e) => setSummary(e.target.value)} />
      </label>

      {type === "ACTIVITY_TYPE_VISIT" && (
        <fieldset>
          <legend>{t("rep.log.checkIn")}</legend>
          <button type="button" className="secondary" onClick={checkIn} disabled={geo.state === "asking"}>
            {t("rep.log.locate")}
          </button>
          <p role="status" className={geo.state === "failed" ? "help warn" : "help"}>
            {geo.state === "ok"
              ? t("rep.log.located", { lat: geo.point.latitude!.toFixed(5), lng: geo.point.longitude!.toFixed(5), acc: Math.round(geo.point.accuracyM ?? 0) })
              : geo.state === "failed"
                ? t("rep.log.noLocation", { why: t(`rep.geo.${geo.why}`) })
                : geo.state === "asking"
                  ? t("rep.log.locating")
                  : ""}
          </p>
          <label>
            {t("rep.log.address")}
            <input name="address" value={address} onChange={(e) => setAddress(e.target.value)} />
          </label>
          <label>
            {t("rep.log.photos")}
            <input type="file" name="photos" accept="image/*" capture="environment" multiple onChange={(e) => addPhotos(e.target.files)} />
          </label>
          {!!photos.length && (
            <ul className="photos" aria-label={t("rep.log.photos")}>
              {photos.map((ph) => (
                <li key={ph.sha256}>
                  {ph.fileName} ({Math.ceil(Number(ph.sizeBytes) / 1024)} KB)
                </li>
              ))}
            </ul>
          )}
        </fieldset>
      )}

      {applicable.length > 0 && (
        <fieldset className="units">
          <legend>{t("rep.log.units")}</legend>
          {applicable.map((u) => {
            const v = units[u.unitId!] ?? { done: false, note: "" };
            const set = (next: Partial<typeof v>) => setUnits((all) => ({ ...all, [u.unitId!]: { ...v, ...next } }));
            return (
              <div key={u.unitId} className="unit" data-unit={u.unitId}>
                <label className="choice">
                  <input type="checkbox" checked={v.done} onChange={(e) => set({ done: e.target.checked })} />
                  {u.displayName || u.unitId}
                  {u.required && <span className="required"> {t("rep.log.required")}</span>}
                </label>
                {u.description && <div className="sub">{u.description}</div>}
                {(u.evidence === "EVIDENCE_KIND_NOTE" || v.done) && (
                  <label>
                    {t("rep.log.unitNote")}
                    <input value={v.note} onChange={(e) => set({ note: e.target.value })} />
                  </label>
                )}
              </div>
            );
          })}
        </fieldset>
      )}

      <fieldset>
        <legend>{t("rep.log.next")}</legend>
        <label>
          {t("rep.log.nextAction")}
          <input name="nextAction" value={nextAction} required={nextRequired} onChange={(e) => setNextAction(e.target.value)} />
        </label>
        <label>
          {t("rep.log.nextDate")}
          <input type="date" name="nextDate" value={nextDate} required={nextRequired} onChange={(e) => setNextDate(e.target.value)} />
        </label>
      </fieldset>
      {message && (
        <p role={message.ok ? "status" : "alert"} className={message.ok ? "ok" : "error"}>
          {message.text}
        </p>
      )}
      <button type="submit" disabled={busy}>
        {editing ? t("rep.log.saveEdit") : t("rep.log.submit")}
      </button>
    </form>
  );
}
