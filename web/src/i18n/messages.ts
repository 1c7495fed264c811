// Every string the console shows, in zh-CN (the default) and English: the shell's here, each
// area's in pages/<area>/messages.ts. A key missing in one language falls back to the other
// (and is a bug: src/i18n/messages.test.ts checks both catalogues have the same keys).
import * as admin from "../pages/admin/messages";
import * as approvals from "../pages/approvals/messages";
import * as manager from "../pages/manager/messages";
import * as rep from "../pages/rep/messages";

export type Locale = "zh-CN" | "en";

const areas = [rep, manager, approvals, admin];

const shell: Record<Locale, Record<string, string>> = {
  "zh-CN": {
    "app.name": "销售运营",
    "app.language": "语言",
    "app.signOut": "退出登录",
    "app.loading": "加载中…",
    "app.error": "出错了：{message}",
    "app.retry": "重试",
    "app.notFound": "页面不存在",
    "app.offline": "离线",
    "app.online": "在线",
    "nav.worklist": "我的线索",
    "nav.pool": "公海",
    "nav.deals": "我的商机",
    "nav.duties": "反馈任务",
    "nav.inbox": "消息",
    "nav.dashboards": "仪表盘",
    "nav.approvals": "审批",
    "nav.admin": "管理",
    "signIn.title": "登录",
    "signIn.asDemoUser": "以演示用户身份登录",
    "signIn.expired": "登录已过期，请重新登录。离线保存的更改不会丢失。",
    "signIn.token": "访问令牌",
    "signIn.tokenHelp": "生产环境中，令牌由贵公司的身份提供方（OIDC）签发。",
    "signIn.submit": "登录",
    "signIn.badToken": "无法识别此令牌",
    "role.admin": "管理员",
    "role.director": "总监",
    "role.supervisor": "主管",
    "role.rep": "销售",
    "role.approver": "审批人",
  },
  en: {
    "app.name": "salesops",
    "app.language": "Language",
    "app.signOut": "Sign out",
    "app.loading": "Loading…",
    "app.error": "Something went wrong: {message}",
    "app.retry": "Retry",
    "app.notFound": "No such page",
    "app.offline": "Offline",
    "app.online": "Online",
    "nav.worklist": "My leads",
    "nav.pool": "Pool",
    "nav.deals": "My deals",
    "nav.duties": "Feedback duties",
    "nav.inbox": "Inbox",
    "nav.dashboards": "Dashboards",
    "nav.approvals": "Approvals",
    "nav.admin": "Admin",
    "signIn.title": "Sign in",
    "signIn.asDemoUser": "Sign in as a demo user",
    "signIn.expired": "Your session expired; sign in again. Changes saved offline are kept.",
    "signIn.token": "Access token",
    "signIn.tokenHelp": "In production, tokens come from your company's identity provider (OIDC).",
    "signIn.submit": "Sign in",
    "signIn.badToken": "This token is not one the console understands",
    "role.admin": "Admin",
    "role.director": "Director",
    "role.supervisor": "Supervisor",
    "role.rep": "Rep",
    "role.approver": "Approver",
  },
};

export const messages: Record<Locale, Record<string, string>> = {
  "zh-CN": Object.assign({}, shell["zh-CN"], ...areas.map((a) => a.zh)),
  en: Object.assign({}, shell.en, ...areas.map((a) => a.en)),
};
