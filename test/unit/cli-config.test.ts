// Profiles on disk (a temp XDG_CONFIG_HOME): where they live, 0600 files, corrupt files, and which URL and
// token a command ends up with when the environment overrides the profile.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  configDir,
  configPath,
  profileName,
  readConfig,
  resolveCredentials,
  writeConfig,
} from "../../cli/lib/config.ts";
import { CliError } from "../../cli/lib/errors.ts";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "gantry-cli-config-"));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("config location", () => {
  it("uses $XDG_CONFIG_HOME/gantry, else ~/.config/gantry; a relative XDG_CONFIG_HOME is ignored", () => {
    expect(configDir({ XDG_CONFIG_HOME: "/x/cfg", HOME: "/home/a" })).toBe("/x/cfg/gantry");
    expect(configDir({ HOME: "/home/a" })).toBe("/home/a/.config/gantry");
    expect(configDir({ XDG_CONFIG_HOME: "rel/cfg", HOME: "/home/a" })).toBe("/home/a/.config/gantry");
    expect(configPath({ XDG_CONFIG_HOME: "/x" })).toBe("/x/gantry/config.json");
  });

  it("picks the profile from --profile, then GANTRY_PROFILE, then default", () => {
    expect(profileName("ci", { GANTRY_PROFILE: "dev" })).toBe("ci");
    expect(profileName(undefined, { GANTRY_PROFILE: "dev" })).toBe("dev");
    expect(profileName(undefined, {})).toBe("default");
    expect(() => profileName("../etc", {})).toThrow(CliError);
  });
});

describe("config file", () => {
  it("a missing file is an empty config", () => {
    expect(readConfig(path.join(dir, "none.json"))).toEqual({ config: { profiles: {} }, tooOpen: false });
  });

  it("round-trips profiles, creating the directory 0700 and the file 0600", () => {
    const file = configPath({ XDG_CONFIG_HOME: dir });
    const config = {
      profiles: {
        default: { url: "http://a", key: "gtk_t_x" },
        admin: { url: "http://a", adminToken: "adm" },
      },
    };
    writeConfig(config, file);
    expect(readConfig(file)).toEqual({ config, tooOpen: false });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    // No temp files left behind.
    expect(fs.readdirSync(path.dirname(file))).toEqual(["config.json"]);
  });

  it("replaces an existing file whatever its mode, and reports one readable by others", () => {
    const file = path.join(dir, "config.json");
    fs.writeFileSync(file, JSON.stringify({ profiles: { default: { url: "http://old" } } }), { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    expect(readConfig(file).tooOpen).toBe(true);
    writeConfig({ profiles: { default: { url: "http://new", key: "k" } } }, file);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(readConfig(file)).toEqual({
      config: { profiles: { default: { url: "http://new", key: "k" } } },
      tooOpen: false,
    });
  });

  it("a corrupt file is an error that names it and says what to do; junk entries are skipped", () => {
    const file = path.join(dir, "config.json");
    fs.writeFileSync(file, "{not json");
    expect(() => readConfig(file)).toThrow(/config.json is not valid JSON; fix it or delete it/);
    fs.writeFileSync(file, JSON.stringify({ profiles: { a: { url: 1 }, b: { url: "http://b", key: 7 } } }));
    expect(readConfig(file).config).toEqual({ profiles: { b: { url: "http://b" } } });
    fs.writeFileSync(file, "[]");
    expect(() => readConfig(file)).toThrow(/no "profiles" object/);
  });
});

describe("resolveCredentials", () => {
  const profile = { url: "http://p/", key: "tenant-key", adminToken: "admin-token" };

  it("uses the profile's token for the role, the environment overriding it", () => {
    expect(resolveCredentials("tenant", profile, "default", {})).toEqual({
      url: "http://p",
      token: "tenant-key",
      profile: "default",
      source: "profile",
    });
    expect(resolveCredentials("admin", profile, "default", {}).token).toBe("admin-token");
    const env = { GANTRY_URL: "http://env", GANTRY_KEY: "env-key", GANTRY_ADMIN_TOKEN: "env-admin" };
    expect(resolveCredentials("tenant", profile, "default", env)).toMatchObject({
      url: "http://env",
      token: "env-key",
      source: "GANTRY_KEY",
    });
    expect(resolveCredentials("admin", profile, "default", env)).toMatchObject({
      token: "env-admin",
      source: "GANTRY_ADMIN_TOKEN",
    });
  });

  it("falls back to the other kind of token, so the server's 403 can say what is missing", () => {
    expect(resolveCredentials("admin", { url: "http://p", key: "k" }, "default", {}).token).toBe("k");
    expect(resolveCredentials("tenant", { url: "http://p", adminToken: "a" }, "default", {}).token).toBe("a");
    expect(
      resolveCredentials("tenant", undefined, "default", { GANTRY_URL: "http://e", GANTRY_KEY: "k" }),
    ).toMatchObject({ url: "http://e", token: "k", source: "GANTRY_KEY" });
  });

  it("without URL or token: exit 3 and the login command to run", () => {
    try {
      resolveCredentials("tenant", undefined, "ci", {});
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(CliError);
      expect((err as CliError).exitCode).toBe(3);
      expect((err as CliError).message).toMatch(/gantry login --url URL --key KEY --profile ci/);
    }
    expect(() => resolveCredentials("admin", { url: "http://p" }, "default", {})).toThrow(
      /GANTRY_ADMIN_TOKEN/,
    );
  });
});
