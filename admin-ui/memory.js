// SPDX-License-Identifier: MIT
// memory.js: the agent's memory and skills (#/memory, or #/memory/SANDBOX
// for another agent's). The files live in the sandbox's /data (OpenClaw's
// layout, sandbox/agent/README.md) and are read and saved through the
// sandbox files API; the skills come from `pincer-agent skills` run in
// the sandbox (the agent's own eligibility code), and a skill is turned
// off by its name in /data/skills.disabled, which pincer-agent honours.
import { api } from "./api.js";
import { h, errLine, attempt, bytes, when } from "./ui.js";

const TOP = [["MEMORY.md", "Long-term memory, in every prompt"],
	["USER.md", "Who the owner is"],
	["SOUL.md", "Who the agent is: tone, values"],
	["AGENTS.md", "Standing instructions"]];
const AGENT = "/opt/pincer/pincer-agent";
const DISABLED = "/data/skills.disabled";

/* The sandbox of the person's own agent: agent-NAME (gateway/dispatch.c's
 * sandbox_name), with a hash after it when the name had other
 * characters, so that form is matched by its start. */
function ownSandbox(list, me) {
	const clean = me.name.toLowerCase().slice(0, 24)
		.replace(/[^a-z0-9_-]/g, "-");
	const want = "agent-" + clean;
	const hit = list.find((s) => s.name === want) ||
		list.find((s) => s.name.startsWith(want + "-")) ||
		list.find((s) => s.name.startsWith("agent-"));
	return { want, name: hit ? hit.name : null };
}

const filesPath = (box, p) => `/api/v1/sandboxes/${encodeURIComponent(box)}` +
	"/files" + p.split("/").map(encodeURIComponent).join("/");

// PUT text to a sandbox file. api() sends JSON; a file is its bytes, so
// this asks /api/v1/me for the CSRF token, as a fresh login would have.
async function putText(box, p, text) {
	const me = await api("/api/v1/me");
	let r;
	try {
		r = await fetch(filesPath(box, p), { method: "PUT", body: text,
			headers: { "X-CSRF-Token": me.csrf_token || "",
				"Content-Type": "application/octet-stream" } });
	} catch (e) {
		throw new Error("The gateway could not be reached (" +
			e.message + ").");
	}
	if (!r.ok) {
		const j = await r.json().catch(() => null);
		throw new Error(j && j.error ? j.error.message :
			`The gateway answered ${r.status} ${r.statusText}.`);
	}
}

export function render(el, ctx) {
	const err = errLine("memory-err");
	const head = h("div", { id: "memory-agent" });
	const files = h("section", { id: "memory-files",
		"aria-labelledby": "memory-files-h" });
	const skills = h("section", { id: "memory-skills",
		"aria-labelledby": "memory-skills-h" });
	el.replaceChildren(h("h1", {}, "Memory and skills"), head, err, files,
		skills);
	let alive = true;

	async function start() {
		/* The files live in a sandbox, and sandboxes are for admins
		 * (README, Sandboxes): say so rather than show a 403. */
		if (ctx.me && ctx.me.role === "member") {
			head.replaceChildren(h("p", { id: "memory-member" }, "The " +
				"agent's memory and skills live in its sandbox, " +
				"which an admin or an owner manages."));
			return;
		}
		const r = await attempt(err, () => api("/api/v1/sandboxes"));
		if (!r || !alive) return;
		const own = ownSandbox(r.sandboxes, ctx.me);
		const box = ctx.params[0] || own.name;
		const known = r.sandboxes.find((s) => s.name === box);
		if (!known) {
			noSandbox(own.want);
			return;
		}
		chooser(r.sandboxes, box, known);
		await fileView(files, box);
		await skillView(skills, box);
	}

	function noSandbox(want) {
		const make = h("button", { type: "button", id: "memory-create" },
			`Make ${want} now`);
		const line = errLine("memory-create-err");
		make.addEventListener("click", async () => {
			make.disabled = true;
			const ok = await attempt(line, () => api("/api/v1/sandboxes",
				{ method: "POST", body: { name: want } }));
			make.disabled = false;
			if (ok && alive) start();
		});
		head.replaceChildren(h("p", { id: "memory-none" }, "Your agent " +
			`has no sandbox yet (${want}): it is made with your first ` +
			"chat message, or now. Its memory and skills live in its " +
			"/data folder."), make, line);
		files.replaceChildren();
		skills.replaceChildren();
	}

	function chooser(list, box, s) {
		const sel = h("select", { id: "memory-box" }, list.map((x) =>
			h("option", { value: x.name, selected: x.name === box },
				x.name)));
		sel.addEventListener("change", () => {
			location.hash = "#/memory/" + encodeURIComponent(sel.value);
		});
		head.replaceChildren(h("div", { class: "row wrap" },
			h("label", {}, "Agent's sandbox", sel),
			h("p", { class: "muted", id: "memory-state" },
				`State: ${s.state}. ` + (s.state === "running" ? "" :
				"Opening or saving a file starts it (its /data is " +
				"kept while it sleeps)."))));
	}

	start();
	return () => { alive = false; };
}

/* --- files -------------------------------------------------------------- */

async function fileView(el, box) {
	const err = errLine("memory-files-err");
	const list = h("ul", { class: "memory-list", id: "memory-list" });
	const editor = h("div", { id: "memory-editor" });
	el.replaceChildren(h("h2", { id: "memory-files-h" }, "Memory files"),
		err, h("div", { class: "memory-split" }, list, editor));
	const data = await attempt(err, () => api(filesPath(box, "/data")));
	if (!data) return;
	const have = new Map(data.entries.map((e) => [e.name, e]));
	let notes = [];
	if (have.has("memory") && have.get("memory").type === "dir") {
		const m = await attempt(err, () => api(filesPath(box,
			"/data/memory")));
		if (m) notes = m.entries.filter((e) => e.type === "file" &&
			/^\d{4}-\d{2}-\d{2}\.md$/.test(e.name))
			.sort((a, b) => b.name.localeCompare(a.name));
	}
	const today = new Date().toISOString().slice(0, 10) + ".md";
	if (!notes.some((n) => n.name === today))
		notes.unshift({ name: today, missing: true });
	const open = (p, label, meta) => edit(editor, box, p, label, meta);
	const item = (p, label, note, meta) => h("li", {}, h("button", {
		type: "button", class: "memory-open", "data-path": p,
		onclick: (ev) => {
			for (const b of list.querySelectorAll("button"))
				b.removeAttribute("aria-current");
			ev.currentTarget.setAttribute("aria-current", "true");
			open(p, label, meta);
		} }, label), h("span", { class: "muted" }, note));
	list.replaceChildren(
		...TOP.map(([n, what]) => item("/data/" + n, n, have.has(n) ?
			` ${what}; ${bytes(have.get(n).size)}` :
			` ${what}; not written yet`, have.get(n))),
		h("li", { class: "muted" }, "Daily notes (UTC days; yesterday's " +
			"and today's are in the prompt):"),
		...notes.map((n) => item("/data/memory/" + n.name,
			"memory/" + n.name, n.missing ? " today; not written yet" :
			` ${bytes(n.size)}`, n.missing ? null : n)));
	list.querySelector("button").click();
}

async function edit(el, box, p, label, meta) {
	const err = errLine("memory-edit-err");
	const said = h("p", { role: "status", id: "memory-saved" });
	const text = h("textarea", { id: "memory-text", rows: 18,
		spellcheck: "true", "aria-label": `The text of ${label}` });
	const save = h("button", { type: "submit", id: "memory-save" }, "Save");
	const f = h("form", { class: "memory-form" }, h("h3", {}, label),
		h("p", { class: "muted" }, meta ? `Changed ${when(meta.mtime_ms /
			1000)}` : "Not written yet: Save makes it."),
		text, h("div", { class: "row" }, save), err, said);
	el.replaceChildren(f);
	if (meta) {
		/* Only files the listing showed are read: no 404 to explain. */
		const t = await attempt(err, () => api(filesPath(box, p),
			{ text: true }));
		if (t === undefined) return;
		text.value = t;
	}
	text.addEventListener("input", () => { said.textContent = "Not saved."; });
	f.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		save.disabled = true;
		const ok = await attempt(err, async () => {
			await putText(box, p, text.value);
			return true;
		});
		save.disabled = false;
		if (ok) said.textContent = `Saved ${label}.`;
	});
}

/* --- skills ------------------------------------------------------------- */

async function skillView(el, box) {
	const err = errLine("memory-skills-err");
	const body = h("div", { id: "skills-list" }, h("p", { class: "muted" },
		"Asking the agent…"));
	el.replaceChildren(h("h2", { id: "memory-skills-h" }, "Skills"),
		h("p", { class: "muted" }, "The agent's own check decides which " +
			"skills it may use here (pincer-agent skills). Turning one " +
			"off lists it in /data/skills.disabled."), err, body);
	const run = await attempt(err, async () => {
		const r = await api(`/api/v1/sandboxes/${encodeURIComponent(box)}` +
			"/exec", { method: "POST", body: { cmd: [AGENT, "skills"],
			timeout_ms: 30000 } });
		/* The listing is whole when its JSON is: a complaint on the
		 * way out (a sanitizer build's, say) does not void it. */
		try {
			const out = JSON.parse(r.stdout);
			if (Array.isArray(out.skills)) return out;
		} catch { /* said below */ }
		throw new Error("pincer-agent skills failed (exit " +
			`${r.exit_code}): ` + (r.stderr || r.stdout).trim()
			.slice(0, 500));
	});
	if (!run) {
		body.replaceChildren();
		return;
	}
	body.replaceChildren(run.skills.length ? h("ul", { id: "skills",
		class: "skills" }, run.skills.map((s) => skillRow(box, s,
		() => skillView(el, box)))) : h("p", {}, "No skills were found."));
}

function skillRow(box, s, reload) {
	const rowErr = h("p", { class: "bad", role: "alert" });
	const sw = h("input", { type: "checkbox", class: "skill-enabled",
		checked: s.enabled, "aria-label": `${s.name} enabled`,
		"data-skill": s.name });
	sw.addEventListener("change", async () => {
		sw.disabled = true;
		const ok = await attempt(rowErr, async () => {
			await setEnabled(box, s.name, sw.checked);
			return true;
		});
		sw.disabled = false;
		if (ok) reload();
		else sw.checked = !sw.checked;
	});
	return h("li", { class: "card skill" },
		h("h3", { class: "skill-name" }, s.name),
		h("div", { class: "row wrap" },
			s.eligible ? h("span", { class: "ok" }, "Eligible") :
				h("span", { class: "bad skill-reason" },
					"Not eligible: " + s.reason),
			h("label", { class: "check" }, sw, s.enabled ? "on" : "off"),
			h("span", { class: "muted" }, s.shadowed ? `${s.source}, ` +
				"replaced by the owner's" : s.source)),
		h("p", {}, s.description), rowErr);
}

// Rewrite /data/skills.disabled with the name added or taken out,
// keeping the other lines (comments too) as they were.
async function setEnabled(box, name, on) {
	const dir = await api(filesPath(box, "/data"));
	const had = dir.entries.some((e) => e.name === "skills.disabled");
	const old = had ? await api(filesPath(box, DISABLED), { text: true }) :
		"# Skills the agent does not use, one name a line.\n";
	const bare = (l) => l.replace(/#.*/, "").trim();
	const lines = old.split("\n").filter((l) => bare(l) !== name);
	if (lines.length && lines[lines.length - 1] === "") lines.pop();
	if (!on) lines.push(name);
	await putText(box, DISABLED, lines.join("\n") + "\n");
}
