import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from "react";
import { messages, type Locale } from "./messages";

const LOCALE_KEY = "salesops.locale";

export function storedLocale(): Locale {
  const saved = typeof localStorage === "undefined" ? null : localStorage.getItem(LOCALE_KEY);
  return saved === "en" ? "en" : "zh-CN";
}

/** Translate `key` in `locale`, filling {name} placeholders. */
export function translate(locale: Locale, key: string, vars: Record<string, string | number> = {}): string {
  const other: Locale = locale === "en" ? "zh-CN" : "en";
  const template = messages[locale][key] ?? messages[other][key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name: string) => String(vars[name] ?? `{${name}}`));
}

interface I18n {
  locale: Locale;
  setLocale: (locale: Locale) => void;
  t: (key: string, vars?: Record<string, string | number>) => string;
  /** Numbers, money and dates in the chosen locale. */
  number: (n: number, options?: Intl.NumberFormatOptions) => string;
  dateTime: (iso: string | Date, options?: Intl.DateTimeFormatOptions) => string;
}

const Context = createContext<I18n | null>(null);

export function I18nProvider({ children }: { children: ReactNode }) {
  const [locale, setLocaleState] = useState<Locale>(storedLocale);
  const setLocale = useCallback((next: Locale) => {
    localStorage.setItem(LOCALE_KEY, next);
    document.documentElement.lang = next;
    setLocaleState(next);
  }, []);
  const value = useMemo<I18n>(
    () => ({
      locale,
      setLocale,
      t: (key, vars) => translate(locale, key, vars),
      number: (n, options) => new Intl.NumberFormat(locale, options).format(n),
      dateTime: (iso, options) =>
        new Intl.DateTimeFormat(locale, options ?? { dateStyle: "medium", timeStyle: "short" }).format(
          typeof iso === "string" ? new Date(iso) : iso,
        ),
    }),
    [locale, setLocale],
  );
  return <Context.Provider value={value}>{children}</Context.Provider>;
}

export function useI18n(): I18n {
  const value = useContext(Context);
  if (!value) throw new Error("useI18n outside I18nProvider");
  return value;
}
