// SPDX-License-Identifier: MIT
// sbx-files.js: the sandbox's files over GET|PUT|POST|DELETE
// /api/v1/sandboxes/NAME/files/PATH (docs/sandbox-api.md "Files"): a
// folder's entries with a breadcrumb, a text file viewed and edited, any
// file downloaded (a plain link: the session cookie authenticates it) or
// uploaded, folders made, things deleted after a confirm.
import { api, ApiError } from "./api.js";
import { h, errLine, attempt, table, bytes, when, confirmBox }
	from "./ui.js";

const HOME = "/workspace";
const EDIT_MAX = 256 * 1024;	/* larger files are downloaded, not edited */
const enc = encodeURIComponent;

// "/workspace/a b" -> "/workspace/a%20b": each part encoded, "/" kept.
const encPath = (p) => p.split("/").map(enc).join("/");
const join = (dir, n) => (dir === "/" ? "" : dir) + "/" + n;
const base = (p) => p.replace(/^.*\//, "") || "/";

/*
 * A body of bytes (api() sends JSON only). The CSRF token is asked of
 * /api/v1/me each time, through api(), so an expired session goes
 * through the login dialog first and a new token is used after it.
 */
async function putBytes(url, body) {
	const me = await api("/api/v1/me");
	let r;
	try {
		r = await fetch(url, { method: "PUT", body, cache: "no-store",
			headers: { "X-CSRF-Token": me.csrf_token,
				"Content-Type": "application/octet-stream" } });
	} catch (e) {
		throw new ApiError(0, "unreachable",
			`The gateway could not be reached (${e.message}).`);
	}
	const text = await r.text().catch(() => "");
	let out = null;
	try { out = JSON.parse(text); } catch { /* not JSON */ }
	if (!r.ok)
		throw new ApiError(r.status, out?.error?.code ?? "http",
			out?.error?.message ??
			`The gateway answered ${r.status} ${r.statusText}.`);
	return out;
}

export function mount(el, name) {
	const root = `/api/v1/sandboxes/${enc(name)}/files`;
	const url = (p) => root + encPath(p);
	let cwd = HOME, gone = false, shown = null;

	const crumbs = h("nav", { id: "sbx-files-path", class: "crumbs",
		"aria-label": "Folder" });
	const listErr = errLine("sbx-files-error");
	const list = h("div", { id: "sbx-files-list" });
	const toolErr = errLine("sbx-files-tool-error");
	const upload = h("input", { type: "file", id: "sbx-files-upload",
		multiple: true });
	const dirName = h("input", { id: "sbx-files-mkdir-name",
		autocomplete: "off", spellcheck: "false", required: true });
	const mkdir = h("form", { class: "inline", id: "sbx-files-mkdir" },
		h("label", {}, "New folder", dirName),
		h("button", { type: "submit" }, "Make folder"));
	const refreshBtn = h("button", { type: "button",
		id: "sbx-files-refresh", onclick: () => show(cwd) }, "Refresh");
	const view = h("section", { id: "sbx-files-view", class: "card",
		hidden: true, "aria-labelledby": "sbx-files-view-h" });

	async function show(dir) {
		const out = await attempt(listErr, () => api(url(dir)));
		if (gone) return;
		if (!out || !Array.isArray(out.entries)) {
			if (out) listErr.textContent = `${dir} is not a folder.`;
			return;
		}
		cwd = dir;
		drawCrumbs();
		const rows = out.entries.map((e) => row(e));
		list.replaceChildren(rows.length ? table(["Name", "Size",
			"Modified", "Actions"], rows, { id: "sbx-files-table" }) :
			h("p", { class: "muted", id: "sbx-files-empty" },
				"This folder is empty."));
	}

	function drawCrumbs() {
		const parts = cwd.split("/").filter(Boolean);
		const kids = [crumb("/", "/ (root)")];
		parts.forEach((p, i) => kids.push(h("span",
			{ "aria-hidden": "true" }, " / "), crumb("/" +
			parts.slice(0, i + 1).join("/"), p)));
		crumbs.replaceChildren(...kids);
	}

	function crumb(path, label) {
		return path === cwd ? h("span", { "aria-current": "location" },
			label) : h("button", { type: "button", class: "link",
			onclick: () => show(path) }, label);
	}

	function row(e) {
		const path = join(cwd, e.name);
		const isDir = e.type === "dir";
		const open = h("button", { type: "button", class: "link",
			"data-name": e.name, onclick: () => isDir ? show(path) :
				e.type === "symlink" ? follow(path) : viewFile(path,
					e.size) }, e.name + (isDir ? "/" : ""));
		const err = h("p", { class: "bad", role: "alert" });
		const del = h("button", { type: "button", class: "del",
			"aria-label": `Delete ${e.name}` }, "Delete");
		del.addEventListener("click", () => remove(path, isDir, err));
		const acts = h("div", { class: "row" }, isDir ? null :
			h("a", { href: url(path), download: e.name,
				class: "download", "aria-label":
				`Download ${e.name}` }, "Download"), del);
		return [open, isDir ? "folder" : e.type === "file" ?
			bytes(e.size) : e.type, e.mtime_ms ? when(e.mtime_ms / 1000) :
			"",
		h("div", {}, acts, err)];
	}

	/*
	 * A link may name a folder or a file, and the stat describes the
	 * link itself: what a GET through it answers says which.
	 */
	async function follow(path) {
		const out = await attempt(listErr, () => api(url(path)));
		if (out === undefined || gone) return;
		if (out && Array.isArray(out.entries)) show(path);
		else viewFile(path, undefined);
	}

	async function remove(path, isDir, err) {
		if (!await confirmBox(el, `Delete ${path}` + (isDir ?
			" and everything in it?" : "?") + " This cannot be undone.",
		"Delete")) return;
		const ok = await attempt(err, () => api(url(path) +
			(isDir ? "?recursive=1" : ""), { method: "DELETE" }));
		if (ok === undefined || gone) return;
		if (shown === path) view.hidden = true;
		show(cwd);
	}

	async function viewFile(path, size) {
		shown = path;
		const line = errLine("sbx-files-view-error");
		const status = h("p", { id: "sbx-files-status", role: "status",
			class: "muted" });
		const close = h("button", { type: "button", id: "sbx-files-close",
			onclick: () => { view.hidden = true; shown = null; } },
		"Close");
		const dl = h("a", { href: url(path), download: base(path),
			id: "sbx-files-download" }, "Download");
		view.replaceChildren(h("h2", { id: "sbx-files-view-h" }, path),
			h("p", { class: "muted" }, bytes(size)), h("div",
				{ class: "row" }, dl, close), line, status);
		view.hidden = false;
		if (size !== undefined && size > EDIT_MAX) {
			status.textContent = `Too large to show here (over ` +
				`${bytes(EDIT_MAX)}): download it.`;
			return;
		}
		const text = await attempt(line, () => api(url(path),
			{ text: true }));
		if (text === undefined || gone || shown !== path) return;
		if (text.length > EDIT_MAX) {
			status.textContent = `Too large to edit here (over ` +
				`${bytes(EDIT_MAX)}): download it.`;
			return;
		}
		if (/[\0\uFFFD]/.test(text)) {
			status.textContent = "Not text (binary): download it.";
			return;
		}
		const area = h("textarea", { id: "sbx-files-text", rows: 16,
			spellcheck: "false", "aria-label": `Content of ${path}` });
		area.value = text;
		const save = h("button", { type: "button", id: "sbx-files-save" },
			"Save");
		save.addEventListener("click", async () => {
			save.disabled = true;
			status.textContent = "Saving…";
			const out = await attempt(line, () => putBytes(url(path),
				area.value));
			save.disabled = false;
			status.textContent = out ? `Saved (${bytes(out.size)}).` :
				"";
			if (out) show(cwd);
		});
		view.insertBefore(area, line);
		view.insertBefore(save, line);
	}

	upload.addEventListener("change", async () => {
		const files = [...upload.files];
		upload.disabled = true;
		await attempt(toolErr, async () => {
			for (const f of files)
				await putBytes(url(join(cwd, f.name)), f);
		});
		upload.disabled = false;
		upload.value = "";
		if (!gone) show(cwd);
	});
	mkdir.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const n = dirName.value.trim();
		if (n.includes("/") || n === "." || n === "..") {
			toolErr.textContent = "A folder name holds no \"/\" and " +
				"is not \".\" or \"..\".";
			return;
		}
		const out = await attempt(toolErr, () => api(url(join(cwd, n)) +
			"?op=mkdir", { method: "POST" }));
		if (out === undefined || gone) return;
		mkdir.reset();
		show(cwd);
	});

	el.replaceChildren(crumbs, h("div", { class: "row wrap tools" },
		h("label", { class: "file" }, "Upload files (up to 64 MiB each)",
			upload), mkdir, refreshBtn), toolErr, listErr, list, view);
	show(cwd);
	return () => { gone = true; };
}
