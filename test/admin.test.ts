import { describe, expect, it } from "vitest";
import { hashApiKey } from "../src/auth/api-keys";
import {
  ADMIN_TOKEN,
  adminHeaders,
  jsonOf,
  newAccountWithKey,
  send,
  testEnv,
} from "./setup/accounts-app";

function post(path: string, body: unknown, token = ADMIN_TOKEN): Promise<Response> {
  return send(path, {
    method: "POST",
    headers: adminHeaders(token),
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

function patch(path: string, body: unknown): Promise<Response> {
  return send(path, { method: "PATCH", headers: adminHeaders(), body: JSON.stringify(body) });
}

async function createAccountViaApi(
  body: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const response = await post("/admin/accounts", body);
  expect(response.status).toBe(201);
  return jsonOf(response);
}

/** Checks the project's error shape and returns the body. */
async function expectError(response: Response, status: number): Promise<Record<string, unknown>> {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toContain("application/json");
  expect(response.headers.get("dg-error")).toBeTruthy();
  const body = await jsonOf(response);
  expect(typeof body.err_code).toBe("string");
  expect(typeof body.err_msg).toBe("string");
  expect(body.request_id).toBe(response.headers.get("dg-request-id"));
  return body;
}

describe("admin API authentication", () => {
  const validBody = { name: "auth probe", max_concurrent_sessions: 1 };

  it("refuses a missing, wrong or wrongly-schemed admin token with 401", async () => {
    const missing = await send("/admin/accounts", { method: "POST", body: "{}" });
    expect((await expectError(missing, 401)).err_code).toBe("INVALID_AUTH");
    await expectError(await post("/admin/accounts", validBody, "not-the-admin-token"), 401);
    const tokenScheme = await send("/admin/accounts", {
      method: "POST",
      headers: { authorization: `Token ${ADMIN_TOKEN}` },
      body: JSON.stringify(validBody),
    });
    await expectError(tokenScheme, 401);
    const get = await send("/admin/accounts/demo", { headers: { authorization: "Bearer nope" } });
    await expectError(get, 401);
  });

  it("refuses an account's API key and its access token", async () => {
    const { key } = await newAccountWithKey();
    await expectError(await post("/admin/accounts", validBody, key), 401);
    const grant = await send("/v1/auth/grant", {
      method: "POST",
      headers: { authorization: `Token ${key}` },
    });
    const { access_token } = await jsonOf(grant);
    expect(typeof access_token).toBe("string");
    await expectError(await post("/admin/accounts", validBody, String(access_token)), 401);
  });

  it("answers 503 when EARSHOT_ADMIN_TOKEN is not configured, whatever is sent", async () => {
    const unconfigured = { ...testEnv, EARSHOT_ADMIN_TOKEN: undefined };
    const response = await send(
      "/admin/accounts/demo",
      { headers: adminHeaders("") },
      unconfigured,
    );
    expect((await expectError(response, 503)).err_msg).toContain("EARSHOT_ADMIN_TOKEN");
  });

  it("stays closed (503) with an admin token shorter than 32 characters, even presented right", async () => {
    const short = "earshot-admin-token"; // the old public local default
    const weak = { ...testEnv, EARSHOT_ADMIN_TOKEN: short };
    const response = await send("/admin/accounts/demo", { headers: adminHeaders(short) }, weak);
    expect((await expectError(response, 503)).err_msg).toContain("shorter than 32");
    const exactly32 = "a".repeat(32);
    const ok = await send(
      "/admin/accounts/demo",
      { headers: adminHeaders(exactly32) },
      { ...testEnv, EARSHOT_ADMIN_TOKEN: exactly32 },
    );
    expect(ok.status).toBe(200);
  });
});

describe("admin API: accounts", () => {
  it("creates an account (201) and reads it back", async () => {
    const created = await createAccountViaApi({
      name: "Acme",
      max_concurrent_sessions: 5,
      max_session_seconds: 3600,
    });
    expect(created).toMatchObject({
      name: "Acme",
      max_concurrent_sessions: 5,
      max_session_seconds: 3600,
      disabled: false,
    });
    expect(String(created.id)).toMatch(/^acc_/);
    expect(Number.isNaN(Date.parse(String(created.created)))).toBe(false);

    const read = await send(`/admin/accounts/${created.id}`, { headers: adminHeaders() });
    expect(read.status).toBe(200);
    expect(await jsonOf(read)).toMatchObject({ ...created, keys: [] });
  });

  it("defaults max_session_seconds to null", async () => {
    const created = await createAccountViaApi({ name: "B", max_concurrent_sessions: 0 });
    expect(created.max_session_seconds).toBeNull();
    expect(created.max_concurrent_sessions).toBe(0);
  });

  it.each([
    ["an empty body", "", "body"],
    ["invalid JSON", "{name:", "body"],
    ["a JSON array", "[]", "body"],
    ["no name", { max_concurrent_sessions: 1 }, "name"],
    ["a blank name", { name: "  ", max_concurrent_sessions: 1 }, "name"],
    ["a numeric name", { name: 5, max_concurrent_sessions: 1 }, "name"],
    ["no limit", { name: "x" }, "max_concurrent_sessions"],
    ["a negative limit", { name: "x", max_concurrent_sessions: -1 }, "max_concurrent_sessions"],
    ["a fractional limit", { name: "x", max_concurrent_sessions: 1.5 }, "max_concurrent_sessions"],
    ["a string limit", { name: "x", max_concurrent_sessions: "3" }, "max_concurrent_sessions"],
    ["a huge limit", { name: "x", max_concurrent_sessions: 1e9 }, "max_concurrent_sessions"],
    [
      "a zero session length",
      { name: "x", max_concurrent_sessions: 1, max_session_seconds: 0 },
      "max_session_seconds",
    ],
    [
      "an unknown field",
      { name: "x", max_concurrent_sessions: 1, max_concurent_sessions: 2 },
      "max_concurent_sessions",
    ],
  ])("refuses %s with 400 naming '%s'", async (_what, body, field) => {
    const error = await expectError(await post("/admin/accounts", body), 400);
    expect(error.err_code).toBe("Bad Request");
    expect(error.field).toBe(field);
    expect(String(error.err_msg)).toContain(field);
  });

  it("404s an unknown account on GET, PATCH and key creation", async () => {
    await expectError(await send("/admin/accounts/acc_nope", { headers: adminHeaders() }), 404);
    await expectError(await patch("/admin/accounts/acc_nope", { max_concurrent_sessions: 1 }), 404);
    await expectError(await post("/admin/accounts/acc_nope/keys", {}), 404);
  });

  it("patches limits and disables an account", async () => {
    const created = await createAccountViaApi({ name: "P", max_concurrent_sessions: 5 });
    const response = await patch(`/admin/accounts/${created.id}`, {
      max_concurrent_sessions: 2,
      max_session_seconds: 60,
    });
    expect(response.status).toBe(200);
    expect(await jsonOf(response)).toMatchObject({
      max_concurrent_sessions: 2,
      max_session_seconds: 60,
      name: "P",
    });
    const cleared = await jsonOf(
      await patch(`/admin/accounts/${created.id}`, { max_session_seconds: null, disabled: true }),
    );
    expect(cleared).toMatchObject({ max_session_seconds: null, disabled: true });
  });

  it.each([
    ["an empty object", {}, "body"],
    ["a bad limit", { max_concurrent_sessions: -2 }, "max_concurrent_sessions"],
    ["a bad disabled flag", { disabled: "yes" }, "disabled"],
    ["an unknown field", { id: "acc_other" }, "id"],
  ])("refuses a PATCH with %s (400 naming '%s')", async (_what, body, field) => {
    const created = await createAccountViaApi({ name: "Q", max_concurrent_sessions: 1 });
    const error = await expectError(await patch(`/admin/accounts/${created.id}`, body), 400);
    expect(error.field).toBe(field);
  });

  it("applies a lowered limit to the next authentication in this isolate", async () => {
    const { accountId, key } = await newAccountWithKey(5);
    const usage = () => send("/v1/usage", { headers: { authorization: `Token ${key}` } });
    expect((await jsonOf(await usage())).limit).toBe(5);
    await patch(`/admin/accounts/${accountId}`, { max_concurrent_sessions: 1 });
    expect((await jsonOf(await usage())).limit).toBe(1);
  });
});

describe("admin API: keys", () => {
  it("creates a key (201), shows it once, and lists only its metadata", async () => {
    const account = await createAccountViaApi({ name: "K", max_concurrent_sessions: 1 });
    const response = await post(`/admin/accounts/${account.id}/keys`, { label: "backend" });
    expect(response.status).toBe(201);
    const created = await jsonOf(response);
    expect(created).toMatchObject({ account_id: account.id, label: "backend", revoked: null });
    const key = String(created.key);
    expect(key).toMatch(/^esk_/);

    const works = await send("/v1/usage", { headers: { authorization: `Token ${key}` } });
    expect(works.status).toBe(200);
    expect((await jsonOf(works)).account_id).toBe(account.id);

    const read = await send(`/admin/accounts/${account.id}`, { headers: adminHeaders() });
    const text = await read.text();
    expect(text).not.toContain(key);
    expect(text).not.toContain(await hashApiKey(key));
    const keys = (JSON.parse(text) as { keys: Array<Record<string, unknown>> }).keys;
    expect(keys).toEqual([
      {
        id: created.id,
        account_id: account.id,
        label: "backend",
        created: created.created,
        revoked: null,
      },
    ]);
  });

  it("creates a key without a body, label null", async () => {
    const account = await createAccountViaApi({ name: "K2", max_concurrent_sessions: 1 });
    const response = await send(`/admin/accounts/${account.id}/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(response.status).toBe(201);
    expect((await jsonOf(response)).label).toBeNull();
  });

  it("refuses a bad label with 400 naming it", async () => {
    const account = await createAccountViaApi({ name: "K3", max_concurrent_sessions: 1 });
    const error = await expectError(
      await post(`/admin/accounts/${account.id}/keys`, { label: 3 }),
      400,
    );
    expect(error.field).toBe("label");
  });

  it("revokes a key (204): it stops working at once here, and revoking again is 204", async () => {
    const { key, keyId } = await newAccountWithKey();
    const usage = () => send("/v1/usage", { headers: { authorization: `Token ${key}` } });
    expect((await usage()).status).toBe(200);

    const revoke = () =>
      send(`/admin/keys/${keyId}`, { method: "DELETE", headers: adminHeaders() });
    const first = await revoke();
    expect(first.status).toBe(204);
    expect(await first.text()).toBe("");
    await expectError(await usage(), 401);
    expect((await revoke()).status).toBe(204);

    const row = await testEnv.DB.prepare("SELECT revoked_at FROM api_keys WHERE id = ?")
      .bind(keyId)
      .first<{ revoked_at: number | null }>();
    expect(row?.revoked_at).toBeGreaterThan(0);
  });

  it("404s revoking an unknown key", async () => {
    await expectError(
      await send("/admin/keys/key_nope", { method: "DELETE", headers: adminHeaders() }),
      404,
    );
  });
});

describe("mounting", () => {
  it("leaves /v1/listen to its own route (no account-API middleware in front)", async () => {
    // Without an upgrade the listen route itself refuses; the account API would answer 401.
    const response = await send("/v1/listen?encoding=linear16", {
      headers: { Authorization: "Token earshot-demo-key" },
    });
    expect(response.status).toBe(426);
  });
});
