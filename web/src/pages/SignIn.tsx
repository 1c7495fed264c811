// Embedded (`make run`): the demo organisation, one click per user (the gateway mints the token).
// Production: the demo routes do not exist; the deployment's identity provider hands the app a
// bearer token (docs/web.md: OIDC hand-off), or an operator pastes one.
import { useEffect, useState, type FormEvent } from "react";
import { api, ApiError } from "../api/client";
import { session } from "../auth/session";
import { useI18n } from "../i18n/i18n";

interface DemoUser {
  userId: string;
  roles: string[];
  org: string;
  displayName: string;
}

export function SignIn() {
  const { t } = useI18n();
  const [users, setUsers] = useState<DemoUser[] | null>(null);
  const [token, setToken] = useState("");
  const [error, setError] = useState("");

  useEffect(() => {
    // An identity provider may hand the token over in the fragment: #access_token=...
    const fragment = new URLSearchParams(window.location.hash.slice(1));
    const handed = fragment.get("access_token");
    if (handed) {
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
      try {
        session.signIn(handed);
        return;
      } catch {
        setError(t("signIn.badToken"));
      }
    }
    api
      .get<{ users: DemoUser[] }>("/auth/demo-users", { anonymous: true })
      .then((r) => setUsers(r.users))
      .catch(() => setUsers([])); // production: no demo sign-in
  }, [t]);

  async function signInAs(userId: string) {
    setError("");
    try {
      const r = await api.post<{ token: string }>("/auth/demo-sign-in", { userId }, { anonymous: true });
      session.signIn(r.token);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  }

  function submit(e: FormEvent) {
    e.preventDefault();
    try {
      session.signIn(token.trim());
    } catch {
      setError(t("signIn.badToken"));
    }
  }

  return (
    <main id="main" className="sign-in">
      <h1>{t("signIn.title")}</h1>
      {session.expired() && <p role="alert">{t("signIn.expired")}</p>}
      {error && <p role="alert" className="error">{error}</p>}
      {users && users.length > 0 && (
        <section aria-labelledby="demo-users">
          <h2 id="demo-users">{t("signIn.asDemoUser")}</h2>
          <ul className="demo-users">
            {users.map((u) => (
              <li key={u.userId}>
                <button onClick={() => signInAs(u.userId)} data-user={u.userId}>
                  <strong>{u.displayName || u.userId}</strong>
                  <span>
                    {u.roles.map((r) => t(`role.${r}`)).join(", ")} {u.org && `· ${u.org}`}
                  </span>
                </button>
              </li>
            ))}
          </ul>
        </section>
      )}
      <form onSubmit={submit}>
        <label htmlFor="token">{t("signIn.token")}</label>
        <textarea id="token" value={token} onChange={(e) => setToken(e.target.value)} rows={3} />
        <p className="help">{t("signIn.tokenHelp")}</p>
        <button type="submit" disabled={!token.trim()}>
          {t("signIn.submit")}
        </button>
      </form>
    </main>
  );
}
