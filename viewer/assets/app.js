// Entry point: scrub a sign-in link token from the address bar, set up the language switch and
// the header's menu, then render the page for the current URL.
import { captureLinkToken } from "./link-token.js";
import { applyTranslations, currentLanguage, setLanguage } from "./i18n.js";
import { installMenuBehaviour } from "./header.js";
import { render, start } from "./router.js";

captureLinkToken();

const select = document.getElementById("lang");
select.value = currentLanguage();
select.addEventListener("change", () => {
  setLanguage(select.value);
  applyTranslations();
  render();
});

applyTranslations();
installMenuBehaviour();
start();
