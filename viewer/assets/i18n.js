// The viewer's one message catalogue (English and Korean). Browser language by default,
// switchable, remembered in localStorage.

const MESSAGES = {
  en: {
    language: "Language",
    loading: "Loading…",
    "cases.title": "Cases",
    "cases.note": "Ingested exam bundles. Images are encrypted at rest and are never sent to the browser.",
    "cases.empty": "No cases yet. Ingest a bundle with `readroom ingest <bundle> --study <code>`.",
    "cases.error": "Could not load cases: {message}",
    "col.case": "Case",
    "col.study": "Study",
    "col.subject": "Subject",
    "col.visit": "Visit",
    "col.exams": "Exams",
    "kind.fundus": "fundus",
    "kind.red-free": "red-free",
    "kind.oct": "OCT",
    "kind.visual-field": "visual field",
    "kind.report": "report",
    "kind.measurement": "measurements",
    "frames": "{count} B-scans",
  },
  ko: {
    language: "언어",
    loading: "불러오는 중…",
    "cases.title": "증례",
    "cases.note": "등록된 검사 묶음입니다. 영상은 암호화되어 저장되며 브라우저로 전송되지 않습니다.",
    "cases.empty": "아직 증례가 없습니다. `readroom ingest <묶음> --study <코드>`로 등록하세요.",
    "cases.error": "증례를 불러오지 못했습니다: {message}",
    "col.case": "증례",
    "col.study": "연구",
    "col.subject": "대상자",
    "col.visit": "방문",
    "col.exams": "검사",
    "kind.fundus": "안저",
    "kind.red-free": "무적색",
    "kind.oct": "OCT",
    "kind.visual-field": "시야",
    "kind.report": "보고서",
    "kind.measurement": "측정값",
    "frames": "B-스캔 {count}장",
  },
};

export function currentLanguage() {
  const saved = localStorage.getItem("readroom.lang");
  if (saved && MESSAGES[saved]) return saved;
  return navigator.language && navigator.language.toLowerCase().startsWith("ko") ? "ko" : "en";
}

export function setLanguage(lang) {
  if (MESSAGES[lang]) localStorage.setItem("readroom.lang", lang);
}

export function t(key, params = {}) {
  const lang = currentLanguage();
  const text = (MESSAGES[lang] && MESSAGES[lang][key]) || MESSAGES.en[key] || key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

export function applyTranslations(root = document) {
  document.documentElement.lang = currentLanguage();
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
}
