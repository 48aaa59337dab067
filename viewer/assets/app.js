// Worklist placeholder: lists ingested cases (metadata only). Sign-in arrives with the identity issue.
import { applyTranslations, currentLanguage, setLanguage, t } from "./i18n.js";

function examLabel(exam) {
  const kind = t(`kind.${exam.kind}`);
  const eye = exam.eye ? ` ${exam.eye}` : "";
  const frames = exam.kind === "oct" ? ` (${t("frames", { count: exam.frames })})` : "";
  return `${kind}${eye}${frames}`;
}

async function loadCases() {
  const status = document.getElementById("status");
  const table = document.getElementById("cases");
  const body = table.querySelector("tbody");
  try {
    const response = await fetch("/api/cases", { headers: { Accept: "application/json" } });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText);
    body.replaceChildren();
    for (const item of data) {
      const row = document.createElement("tr");
      row.dataset.caseId = item.case_id;
      const cells = [item.label, item.study, item.subject, item.visit, item.exams.map(examLabel).join(", ")];
      for (const text of cells) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      body.append(row);
    }
    table.hidden = data.length === 0;
    status.hidden = data.length !== 0;
    status.textContent = t("cases.empty");
  } catch (err) {
    status.hidden = false;
    status.textContent = t("cases.error", { message: err.message });
  }
}

const select = document.getElementById("lang");
select.value = currentLanguage();
select.addEventListener("change", () => {
  setLanguage(select.value);
  applyTranslations();
  loadCases();
});
applyTranslations();
loadCases();
