// SPDX-License-Identifier: MIT
// channels_guide.js: the setup guide of each kind of channel, filled with
// the channel's own URLs and secret names from GET /api/v1/channels: the
// steps on the platform's side and the exact text to paste, each with a
// Copy button (the clipboard, or the text selected where the browser
// gives no clipboard: a plain-HTTP address other than localhost).
import { h } from "./ui.js";

let copies = 0;

// A labelled block of text to paste, with its Copy button.
export function copyBlock(label, text) {
	const id = "copy-" + ++copies;
	const code = h("code", { id }, text);
	const said = h("span", { class: "muted", role: "status" });
	const btn = h("button", { type: "button", class: "copy",
		"aria-label": `Copy ${label}`, "aria-describedby": id,
		onclick: async () => {
			try {
				await navigator.clipboard.writeText(text);
				said.textContent = "Copied.";
			} catch {
				const sel = window.getSelection();
				sel.selectAllChildren(code);
				said.textContent = "Selected: press Ctrl+C " +
					"(or ⌘C) to copy.";
			}
		} }, "Copy");
	return h("div", { class: "copyblock" },
		h("span", { class: "copylabel" }, label),
		h("pre", {}, code), h("span", { class: "row" }, btn, said));
}

const step = (...kids) => h("li", {}, ...kids);
const hook = (c) => (c.webhooks || [])[0]?.url || "";
const secretName = (c, key) =>
	(c.secrets || []).find((s) => s.key === key)?.name || key;
const setSecret = (c, key) => copyBlock(`the command that stores ` +
	`${key}`, `pincer secret set ${secretName(c, key)}`);

const SLACK_SCOPES = ["app_mentions:read", "chat:write", "im:history",
	"reactions:write", "files:read", "files:write"];
const SLACK_EVENTS = ["app_mention", "message.im"];

function slack(c) {
	const socket = c.mode === "socket";
	const manifest = [
		"display_information:", "  name: pincer", "features:",
		"  app_home:", "    messages_tab_enabled: true",
		"    messages_tab_read_only_enabled: false",
		"  bot_user:", "    display_name: pincer",
		"    always_online: true", "oauth_config:", "  scopes:",
		"    bot:", ...SLACK_SCOPES.map((s) => "      - " + s),
		"settings:", "  event_subscriptions:",
		...(socket ? [] : [`    request_url: ${hook(c)}`]),
		"    bot_events:", ...SLACK_EVENTS.map((e) => "      - " + e),
		`  socket_mode_enabled: ${socket}`,
	].join("\n");
	return [h("ol", {},
		step("At api.slack.com/apps: Create New App, From an app " +
			"manifest, pick the workspace, and paste:",
			copyBlock("the Slack app manifest", manifest)),
		step("Or by hand: OAuth & Permissions, Bot Token Scopes:",
			copyBlock("the bot token scopes",
				SLACK_SCOPES.join(", "))),
		step("App Home: Messages Tab on, and allow users to send " +
			"messages from it."),
		socket ?
			step("Socket Mode: on. Basic Information, App-Level " +
				"Tokens: one with the scope connections:write " +
				"(xapp-…), stored as:", setSecret(c, "app_token")) :
			step("Event Subscriptions: on, Request URL:",
				copyBlock("the Request URL", hook(c))),
		step("Subscribe to bot events:",
			copyBlock("the bot events", SLACK_EVENTS.join(", "))),
		step("Install to Workspace; the Bot User OAuth Token " +
			"(xoxb-…) is stored as:", setSecret(c, "bot_token")),
		socket ? null : step("Basic Information, Signing Secret, " +
			"stored as:", setSecret(c, "signing_secret")),
		step("Invite the bot where it should answer mentions " +
			"(/invite @pincer)."))];
}

function telegram(c) {
	const first = step("In Telegram, @BotFather: /newbot; its token is " +
		"stored as:", setSecret(c, "bot_token"));
	if (c.mode === "polling")
		return [h("ol", {}, first,
			step("Nothing to paste: pincer polls Telegram " +
				"(getUpdates), so no public URL is needed. If a " +
				"webhook was set for this bot before, remove it " +
				"(deleteWebhook), or polling answers 409."))];
	const call = "curl -sS \"https://api.telegram.org/bot$TELEGRAM_BOT_TOKEN" +
		"/setWebhook\" \\\n    --data-urlencode \"url=" + hook(c) +
		"\" \\\n    --data-urlencode \"secret_token=$TELEGRAM_HOOK_SECRET\"" +
		" \\\n    --data-urlencode 'allowed_updates=[\"message\"]'";
	return [h("ol", {}, first,
		step("Choose a random webhook secret (letters, digits, _ " +
			"and -), stored as:", setSecret(c, "webhook_secret")),
		step("Tell Telegram the URL and the secret, once (with " +
			"the two values in the environment):",
			copyBlock("the setWebhook call", call)),
		step("Telegram sends only to HTTPS on port 443, 80, 88 or " +
			"8443; the URL is:", copyBlock("the webhook URL",
				hook(c))))];
}

function whatsapp(c) {
	return [h("ol", {},
		step("At developers.facebook.com: an app with the WhatsApp " +
			"product; a system user's permanent access token, " +
			"stored as:", setSecret(c, "access_token")),
		step("App settings, Basic, App Secret, stored as:",
			setSecret(c, "app_secret")),
		step("Choose a verify token (any random string), stored " +
			"as:", setSecret(c, "verify_token")),
		step("WhatsApp, Configuration, Webhook: Callback URL:",
			copyBlock("the Callback URL", hook(c))),
		step("Verify token: the same string you stored in " +
			`${secretName(c, "verify_token")}; then Verify and ` +
			"save."),
		step("Webhook fields: subscribe to",
			copyBlock("the webhook field", "messages")))];
}

function discord(c) {
	const app = c.settings?.application_id || "APPLICATION_ID";
	const invite = "https://discord.com/oauth2/authorize?client_id=" +
		app + "&scope=bot+applications.commands&permissions=274878008320";
	return [h("ol", {},
		step("At discord.com/developers/applications: New " +
			"Application; Bot, Reset Token, stored as:",
			setSecret(c, "bot_token")),
		step("Bot, Privileged Gateway Intents: turn on Message " +
			"Content Intent. pincer identifies with these intents:",
			copyBlock("the Gateway intents", "GUILD_MESSAGES, " +
				"DIRECT_MESSAGES, MESSAGE_CONTENT (37376)")),
		step("Add the bot to your server with this URL:",
			copyBlock("the invite URL", invite)),
		hook(c) ? step("For the /ask command, General Information, " +
			"Interactions Endpoint URL:",
			copyBlock("the Interactions Endpoint URL", hook(c))) :
			null)];
}

function generic(c) {
	const name = secretName(c, "secret");
	const call = "body='{\"id\": \"1\", \"text\": \"hello\"}'\n" +
		"sig=$(printf '%s' \"$body\" | openssl dgst -sha256 -hmac " +
		"\"$SECRET\" -r | cut -d' ' -f1)\n" +
		"curl -H \"X-Pincer-Signature: sha256=$sig\" -d \"$body\" " +
		hook(c);
	return [h("ol", {},
		step("Choose a random secret, stored as:",
			setSecret(c, "secret")),
		step("The sender POSTs JSON ({\"text\", \"id\", \"sender\", " +
			"\"conversation\"}) to:", copyBlock("the hook URL",
				hook(c))),
		step(`Each request carries X-Pincer-Signature: sha256= and ` +
			`the HMAC-SHA256 of the body keyed with ${name}, e.g.:`,
			copyBlock("an example request", call)),
		c.settings?.callback_url ? step("Replies are POSTed, signed " +
			"the same way, to:", copyBlock("the callback URL",
				c.settings.callback_url)) : null)];
}

const kinds = { slack, telegram, whatsapp, discord, generic };

// The guide's nodes for channel c (base: where the platform reaches us).
export function guide(c, base) {
	const f = kinds[c.kind];
	if (!f) return [h("p", {}, `No guide for ${c.kind}.`)];
	const out = f(c);
	if ((c.webhooks || []).length > 0 && /^http:/.test(base))
		out.unshift(h("p", { class: "bad" }, "This address is plain " +
			"HTTP: platforms send webhooks only to HTTPS. Put a " +
			"reverse proxy or a tunnel in front of pincer and set " +
			"public_url to its address."));
	return out;
}
