// SPDX-License-Identifier: MIT
// sbx-egress.js: the sandbox's way out (README "Egress"): which named
// policy it has, switched with GET|PUT /api/v1/sandboxes/NAME/egress, and
// its requests from GET /api/v1/egress/log?sandbox=NAME, filtered by host
// and action, newest first, "Older" paging back with next_before.
import { api } from "./api.js";
import { h, errLine, attempt, table, bytes, when } from "./ui.js";

const PAGE = 50;
const ACTIONS = ["allow", "inject", "deny", "error"];
const HEADS = ["Time", "Method", "Host", "Path", "Action", "Rule",
	"Status", "Up / down", "Took"];
const enc = encodeURIComponent;

export function mount(el, name) {
	const polErr = errLine("sbx-egress-error");
	const current = h("p", { id: "sbx-egress-current" });
	const pick = h("select", { id: "sbx-egress-pick" });
	const def = h("pre", { id: "sbx-egress-def", class: "code" });
	const polForm = h("form", { class: "inline", id: "sbx-egress-form" },
		h("label", {}, "Policy for this sandbox", pick),
		h("button", { type: "submit", id: "sbx-egress-switch" },
			"Switch"));
	const polMsg = h("p", { role: "status", class: "muted",
		id: "sbx-egress-status" });

	const logErr = errLine("sbx-egress-log-error");
	const host = h("input", { name: "host", id: "sbx-egress-host",
		autocomplete: "off", spellcheck: "false" });
	const action = h("select", { name: "action", id: "sbx-egress-action" },
		h("option", { value: "" }, "any"),
		ACTIONS.map((a) => h("option", { value: a }, a)));
	const filters = h("form", { class: "inline", id: "sbx-egress-filter" },
		h("label", {}, "Host", host), h("label", {}, "Action", action),
		h("button", { type: "submit" }, "Show"));
	const tbody = h("tbody");
	const older = h("button", { type: "button", id: "sbx-egress-older",
		hidden: true }, "Older");
	const empty = h("p", { class: "muted", id: "sbx-egress-empty",
		hidden: true }, "No request matches.");
	let gone = false, before = null;

	async function loadPolicy() {
		const out = await attempt(polErr, () =>
			api(`/api/v1/sandboxes/${enc(name)}/egress`));
		if (!out || gone) return;
		current.textContent = `Now: ${out.policy} ` + (out.set ?
			"(set for this sandbox)" :
			`(the gateway's default, egress.policy)`);
		const names = (out.policies || [out.policy]).slice().sort();
		pick.replaceChildren(h("option", { value: "" },
			`the default (${out.default})`), ...names.map((n) =>
			h("option", { value: n }, n)));
		pick.value = out.set ? out.policy : "";
		def.textContent = out.definition === null ?
			"This policy is not in egress.policies any more: every " +
			"request is denied." : JSON.stringify(out.definition, null, 2);
	}

	polForm.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		polMsg.textContent = "";
		const policy = pick.value || null;
		const out = await attempt(polErr, () =>
			api(`/api/v1/sandboxes/${enc(name)}/egress`,
				{ method: "PUT", body: { policy } }));
		if (!out || gone) return;
		polMsg.textContent = `Switched to ${out.policy}; it decides ` +
			"from the next request on.";
		await loadPolicy();
	});

	async function loadLog(more) {
		const q = new URLSearchParams({ sandbox: name,
			limit: String(PAGE) });
		if (host.value.trim()) q.set("host", host.value.trim());
		if (action.value) q.set("action", action.value);
		if (more && before !== null) q.set("before", String(before));
		const out = await attempt(logErr, () =>
			api(`/api/v1/egress/log?${q}`));
		if (!out || gone) return;
		if (!more) tbody.replaceChildren();
		for (const e of out.entries)
			tbody.append(h("tr", {}, [when(e.time), e.method ?? "",
				`${e.host}:${e.port}`, e.path ?? "(tunnel)",
				h("span", { class: e.action === "deny" ||
					e.action === "error" ? "bad" : "" }, e.action +
					(e.intercepted ? " (intercepted)" : "")),
				String(e.rule), String(e.status ?? ""),
				`${bytes(e.bytes_up)} / ${bytes(e.bytes_down)}`,
				`${e.ms} ms`].map((c, i) => h("td",
					{ "data-label": HEADS[i] }, c))));
		before = out.next_before;
		older.hidden = before === null || before === undefined;
		empty.hidden = tbody.children.length > 0;
	}

	filters.addEventListener("submit", (ev) => {
		ev.preventDefault();
		loadLog(false);
	});
	older.addEventListener("click", () => loadLog(true));
	const refresh = h("button", { type: "button",
		id: "sbx-egress-refresh", onclick: () => loadLog(false) },
	"Refresh");
	const tbl = table(HEADS, [], { id: "sbx-egress-log",
		class: "stack" });
	tbl.querySelector("tbody").replaceWith(tbody);

	el.replaceChildren(
		h("section", { "aria-labelledby": "sbx-egress-h" },
			h("h2", { id: "sbx-egress-h" }, "Egress policy"),
			current, polForm, polMsg, polErr,
			h("details", {}, h("summary", {}, "Its rules"), def)),
		h("section", { "aria-labelledby": "sbx-egress-log-h" },
			h("h2", { id: "sbx-egress-log-h" }, "Requests"),
			h("div", { class: "row wrap" }, filters, refresh),
			logErr, tbl, empty, older));
	loadPolicy();
	loadLog(false);
	return () => { gone = true; };
}
