// The message catalogue: every English message exists in Korean (and no Korean message is
// orphaned), with the same placeholders and plural forms; `t` fills placeholders and plurals.
// Run: node --test viewer/tests/

import assert from "node:assert/strict";
import { test } from "node:test";
import { catalogue, t } from "../assets/i18n.js";

const en = catalogue("en");
const ko = catalogue("ko");

function placeholders(message) {
  const texts = typeof message === "object" ? Object.values(message) : [message];
  return [...new Set(texts.flatMap((text) => [...String(text).matchAll(/\{(\w+)\}/g)].map((m) => m[1])))].sort();
}

test("both catalogues exist", () => {
  assert.ok(en && Object.keys(en).length > 100);
  assert.ok(ko && Object.keys(ko).length > 100);
  assert.equal(catalogue("fr"), null);
  assert.equal(catalogue("constructor"), null);
});

test("every English key exists in Korean", () => {
  const missing = Object.keys(en).filter((key) => !(key in ko));
  assert.deepEqual(missing, []);
});

test("every Korean key exists in English", () => {
  const orphans = Object.keys(ko).filter((key) => !(key in en));
  assert.deepEqual(orphans, []);
});

test("no message is empty", () => {
  for (const [lang, messages] of [["en", en], ["ko", ko]]) {
    for (const [key, message] of Object.entries(messages)) {
      const texts = typeof message === "object" ? Object.values(message) : [message];
      assert.ok(texts.length && texts.every((text) => typeof text === "string" && text.trim() !== ""), `${lang} ${key}`);
    }
  }
});

test("Korean messages use the placeholders of the English ones", () => {
  const different = Object.keys(en)
    .filter((key) => key in ko)
    .filter((key) => placeholders(en[key]).join() !== placeholders(ko[key]).join())
    .map((key) => `${key}: en {${placeholders(en[key])}} ko {${placeholders(ko[key])}}`);
  assert.deepEqual(different, []);
});

test("plural messages have an `other` form (Korean may have one form for all counts)", () => {
  for (const [lang, messages] of [["en", en], ["ko", ko]]) {
    for (const [key, message] of Object.entries(messages)) {
      if (typeof message === "object") assert.equal(typeof message.other, "string", `${lang} ${key}`);
    }
  }
});

test("the lossy badge and the packet loss read as reading-centre Korean", () => {
  assert.equal(ko["viewer.lossy"], "압축");
  assert.equal(ko["viewer.lossless"], "무손실");
  assert.match(ko["viewer.quality"], /패킷 손실 \{loss\}/);
  assert.doesNotMatch(ko["viewer.cannot_verify"], /손실 상태/);
});

test("t fills placeholders, picks plural forms and falls back to the key", () => {
  // Without a browser there is no saved choice and no navigator language: English.
  assert.equal(t("viewer.bscan", { index: 3, count: 128 }), "B-scan 3 / 128");
  assert.equal(t("no.such.key"), "no.such.key");
  const plural = Object.keys(en).find((key) => typeof en[key] === "object" && en[key].one);
  assert.ok(plural);
  assert.notEqual(t(plural, { count: 1 }), t(plural, { count: 2 }));
});
