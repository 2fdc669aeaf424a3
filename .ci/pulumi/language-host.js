// pulumi-language-nodejs, written in Node.js for machines that can build the
// Pulumi CLI from Go modules but not the Go language host (its module is not
// served by the module proxy here). It does what the Go host does for `pulumi
// preview/up/refresh/destroy`: answer the engine's LanguageRuntime calls, and
// for Run start `node <program's @pulumi/pulumi>/cmd/run` with the same flags
// and environment, mapping its exit code the same way (32: the program already
// reported its error, so bail quietly).
//
// Started by the CLI as `pulumi-language-nodejs [-flags...] <engine address>`
// in the project's directory; prints its port on the first line of stdout.

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const VERSION = process.env.PULUMI_NETNS_LANGUAGE_HOST_VERSION || "3.248.0";
// cmd/run exits with this code when it has already logged the program's error.
const EXITED_AFTER_LOGGING = 32;

const flags = process.argv.slice(2);
const engineAddress = flags.filter((a) => !a.startsWith("-")).pop() || "";
const rootFlag = flags.find((a) => a.startsWith("-root="));
const root = rootFlag ? rootFlag.slice("-root=".length) : process.cwd();

// The program's own @pulumi/pulumi (and the gRPC modules it uses), so host and program speak one SDK.
let sdkDir;
try {
  sdkDir = path.dirname(require.resolve("@pulumi/pulumi/package.json", { paths: [root, process.cwd()] }));
} catch {
  process.stderr.write(
    `pulumi-language-nodejs: @pulumi/pulumi is not installed for the program in ${root}: run npm install (or npm ci) there first\n`,
  );
  process.exit(1);
}
const sdk = (id) => require(require.resolve(id, { paths: [sdkDir] }));
const grpc = sdk("@grpc/grpc-js");
const langproto = sdk("@pulumi/pulumi/proto/language_pb");
const langrpc = sdk("@pulumi/pulumi/proto/language_grpc_pb");
const plugproto = sdk("@pulumi/pulumi/proto/plugin_pb");
const emptyproto = sdk("google-protobuf/google/protobuf/empty_pb");

/** The runtime options of Pulumi.yaml (`runtime: {name: nodejs, options: {...}}`), as the engine sends them. */
function options(info) {
  const s = info?.getOptions?.();
  return s ? s.toJavaScript() : {};
}

function run(call, callback) {
  const req = call.request;
  const info = req.getInfo();
  const programDir = info?.getProgramDirectory() || req.getPwd() || root;
  const entry = info?.getEntryPoint() || req.getProgram() || ".";
  const opts = options(info);
  let runPath;
  try {
    runPath = require.resolve("@pulumi/pulumi/cmd/run", { paths: [programDir] });
  } catch {
    const resp = new langproto.RunResponse();
    resp.setError(
      `It looks like the Pulumi SDK has not been installed in ${programDir}. Have you run npm install (or npm ci)?`,
    );
    callback(null, resp);
    return;
  }
  const args = [];
  if (typeof opts.nodeargs === "string" && opts.nodeargs.trim()) args.push(...opts.nodeargs.trim().split(/\s+/));
  args.push(runPath);
  const add = (k, v) => {
    if (v !== undefined && v !== null && v !== "") args.push(`--${k}`, String(v));
  };
  add("monitor", req.getMonitorAddress());
  add("engine", engineAddress);
  add("organization", req.getOrganization());
  add("project", req.getProject());
  add("stack", req.getStack());
  add("pwd", programDir);
  add("root-directory", info?.getRootDirectory());
  if (req.getDryrun()) args.push("--dry-run");
  if (req.getParallel() > 0) add("parallel", req.getParallel());
  args.push(entry, ...req.getArgsList());

  const config = {};
  for (const [k, v] of req.getConfigMap().entries()) config[k] = v;
  const env = {
    ...process.env,
    PULUMI_CONFIG: JSON.stringify(config),
    PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(req.getConfigsecretkeysList()),
  };
  if (opts.typescript !== false) env.PULUMI_NODEJS_TYPESCRIPT = "true";
  if (typeof opts.tsconfig === "string") env.PULUMI_NODEJS_TSCONFIG_PATH = opts.tsconfig;

  const child = spawn(process.execPath, args, { cwd: programDir, env, stdio: ["ignore", "inherit", "inherit"] });
  child.on("error", (err) => {
    const resp = new langproto.RunResponse();
    resp.setError(`could not start node: ${err.message}`);
    callback(null, resp);
  });
  child.on("exit", (code, signal) => {
    const resp = new langproto.RunResponse();
    if (code === EXITED_AFTER_LOGGING) resp.setBail(true);
    else if (code !== 0) resp.setError(`Program exited with non-zero exit code: ${code ?? signal}`);
    callback(null, resp);
  });
}

function requiredPlugins(_call, callback) {
  const resp = new langproto.GetRequiredPluginsResponse();
  resp.setPluginsList([]);
  callback(null, resp);
}

function requiredPackages(_call, callback) {
  const resp = new langproto.GetRequiredPackagesResponse();
  resp.setPackagesList([]);
  callback(null, resp);
}

function pluginInfo(_call, callback) {
  const resp = new plugproto.PluginInfo();
  resp.setVersion(VERSION);
  callback(null, resp);
}

function about(_call, callback) {
  const resp = new langproto.AboutResponse();
  resp.setExecutable(process.execPath);
  resp.setVersion(process.version);
  callback(null, resp);
}

function programDependencies(call, callback) {
  const resp = new langproto.GetProgramDependenciesResponse();
  const dir = call.request.getInfo()?.getProgramDirectory() || root;
  const deps = [];
  for (const name of ["@pulumi/pulumi", "pulumi-netns"]) {
    try {
      const pkg = JSON.parse(fs.readFileSync(require.resolve(`${name}/package.json`, { paths: [dir] }), "utf8"));
      const d = new langproto.DependencyInfo();
      d.setName(name);
      d.setVersion(pkg.version);
      deps.push(d);
    } catch {
      // not installed in this program
    }
  }
  resp.setDependenciesList(deps);
  callback(null, resp);
}

function handshake(_call, callback) {
  callback(null, new langproto.LanguageHandshakeResponse());
}

function cancel(_call, callback) {
  callback(null, new emptyproto.Empty());
}

const server = new grpc.Server({ "grpc.max_receive_message_length": 400 * 1024 * 1024 });
server.addService(langrpc.LanguageRuntimeService, {
  handshake,
  getRequiredPlugins: requiredPlugins,
  getRequiredPackages: requiredPackages,
  run,
  getPluginInfo: pluginInfo,
  about,
  getProgramDependencies: programDependencies,
  cancel,
});
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`pulumi-language-nodejs: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${port}\n`);
});

// The CLI that started this host may die without stopping it (kill -9): the Go
// host then notices its engine is gone; this one notices it was orphaned.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(1);
}, 2000).unref();
