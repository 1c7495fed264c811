// The rep area's strings (zh-CN default, English); merged into the catalogue by i18n/messages.ts.
export const zh: Record<string, string> = {};
export const en: Record<string, string> = {};
