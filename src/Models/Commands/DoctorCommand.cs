using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using GateLoop.Models.Display;
using GateLoop.Runtime;

namespace GateLoop.Models.Commands;

/// <summary>
/// <c>gateloop doctor</c>: a device against the host backend on small shapes. The kernels' PTX is searched for
/// ILGPU's known faults, then scalar math, the GEMM and copy primitives and each model (every buffer, the loss,
/// every gradient, an optimizer step, generation) run on both; a table of relative errors, exit 1 past a tolerance.
/// </summary>
static class DoctorCommand
{
    public static Command Create()
    {
        var device = new Option<string>("--device")
        {
            Description = "the device to check against the host backend: cuda, cuda-sim (the PTX simulator), ilgpu-cpu, or auto (cuda when present, else ilgpu-cpu)",
            DefaultValueFactory = _ => "auto",
        };
        var model = new Option<string?>("--model") { Description = "one model or layer to check (default: every model and layer)" };
        var json = new Option<bool>("--json") { Description = "print one JSON object instead of the table" };
        var command = new Command("doctor", "check that a device computes what the host backend computes: PTX, scalar math, GEMM, every model buffer and gradient")
        {
            device, model, json,
        };
        command.SetAction(parse =>
        {
            string name = parse.GetValue(device)!;
            if (name == "cpu")
                throw new UserInputException("doctor compares a device with the host backend, and cpu is that backend; use --device cuda, cuda-sim or ilgpu-cpu");
            string? only = parse.GetValue(model);
            // Each check builds the model on both sides; its type names the kernels the PTX audit compiles.
            var checks = Catalog.All.Where(e => only is null || e.Name == only).Select(e => (e.Name, Check(e.Name, e.Create, DeviceCheck.Model)))
                .Concat(Catalog.Layers.Where(l => only is null || l.Name == only).Select(l => (l.Name, Check(l.Name, l.Create, DeviceCheck.Layer))))
                .ToList();
            if (checks.Count == 0)
                throw new UserInputException($"unknown model or layer '{only}'; declared: {string.Join(", ", Catalog.All.Select(e => e.Name).Concat(Catalog.Layers.Select(l => l.Name)))}");

            bool asJson = parse.GetValue(json);
            var log = asJson ? TextWriter.Null : Console.Out;
            using var dev = name == "auto" ? AutoDevice() : Device.Create(name);
            // The simulator also checks each launch against its host entry, so a fault names its kernel and PTX line.
            if (dev is SimulatedCudaDevice simulator) simulator.CompareWithHost = true;
            using var host = Device.Create("cpu");
            using var audit = new PtxAudit();
            log.WriteLine($"device {dev.Name}, GEMM {dev.GemmBackend}; against the host backend");

            // The PTX is what a GPU would run, whatever the device: it is checked without one.
            var findings = new List<PtxAudit.Finding>();
            int kernelCount = 0;
            // Sections take from a second to minutes (a large model on ilgpu-cpu): progress on stderr, with an ETA.
            var progress = ProgressLine.OnStderr("doctor", "sections");
            int sections = 2 + checks.Count, done = 0;
            void Ptx(string what, PtxAudit.Report report)
            {
                progress.Clear();
                kernelCount += report.Kernels;
                findings.AddRange(report.Findings);
                log.WriteLine($"PTX    {what}: {report.Kernels} kernels compiled for sm_90, " +
                    (report.Findings.Count == 0 ? "no known ILGPU fault" : $"{report.Findings.Count} known ILGPU faults"));
                foreach (var f in report.Findings) log.WriteLine($"  FAIL {f.Kernel}: {f.Fault}: {f.Line}");
            }
            Ptx("runtime (optimizer, probes, tiled GEMM, bf16 roundings)", audit.AuditRuntime());

            var results = new List<CheckResult>();
            void Section(IReadOnlyList<CheckResult> rows)
            {
                progress.Clear();
                results.AddRange(rows);
                foreach (var r in rows)
                    log.WriteLine($"{r.Section,-18} {r.Name,-44} {Format(r.Error),10} {Format(r.Tolerance),10}  {(r.Passed ? "ok" : "FAIL")}");
            }
            // A section that throws (a kernel the driver refuses, a failed launch) is one failed row; the rest still run.
            void Run(string section, Func<IReadOnlyList<CheckResult>> rows)
            {
                try
                {
                    Section(rows());
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    Section([new(section, $"could not run: {e.GetType().Name}: {e.Message.Split('\n')[0]}", double.PositiveInfinity, 0)]);
                }
                progress.Report(++done, sections);
            }
            log.WriteLine($"{"section",-18} {"check",-44} {"rel. error",10} {"tolerance",10}");
            Run("scalar math", () => DeviceCheck.Scalars(dev));
            Run("primitives", () => DeviceCheck.Primitives(dev));
            foreach (var (checkName, check) in checks)
                Run(checkName, () =>
                {
                    var (type, rows) = check(dev, host);
                    Ptx(checkName, audit.AuditModel(type));
                    return rows;
                });

            var failed = results.Where(r => !r.Passed).ToList();
            bool passed = failed.Count == 0 && findings.Count == 0;
            if (asJson)
                Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
                {
                    ["device"] = dev.Name,
                    ["passed"] = passed,
                    ["ptx_kernels"] = kernelCount,
                    ["ptx_findings"] = findings.Select(f => new Dictionary<string, string> { ["kernel"] = f.Kernel, ["fault"] = f.Fault, ["line"] = f.Line }),
                    // JSON has no infinity: an error past every bound is written as null.
                    ["results"] = results.Select(r => new Dictionary<string, object?>
                    {
                        ["section"] = r.Section, ["name"] = r.Name, ["error"] = double.IsFinite(r.Error) ? r.Error : null,
                        ["tolerance"] = r.Tolerance, ["passed"] = r.Passed,
                    }),
                }));
            progress.Clear();
            WriteLegend(results, log);
            var worst = results.MaxBy(r => r.OfTolerance)!;
            log.WriteLine(passed
                ? $"doctor: all {results.Count} checks within tolerance (closest to its tolerance: {worst.Section} {worst.Name}, {Format(worst.Error)} of {Format(worst.Tolerance)})"
                : $"doctor: {failed.Count} of {results.Count} checks failed{(findings.Count > 0 ? $", {findings.Count} PTX faults" : "")}: " +
                  string.Join("; ", failed.Take(5).Select(r => $"{r.Section} {r.Name} {Format(r.Error)}")));
            return passed ? 0 : 1;
        });
        return command;
    }

    static Func<Device, Device, (Type Type, IReadOnlyList<CheckResult> Rows)> Check<TModule>(string name, Func<Device, TModule> create,
        Func<string, TModule, TModule, int, IReadOnlyList<CheckResult>> compare) where TModule : Module<float> =>
        (dev, host) =>
        {
            using var onDevice = create(dev);
            using var onHost = create(host);
            onDevice.Initialize(0);
            return (onDevice.GetType(), compare(name, onDevice, onHost, 1));
        };

    /// <summary>
    /// What the table's columns and names mean: the buffers are the models' own (their memory plans say what each
    /// holds), so the legend lists those that appeared, each once.
    /// </summary>
    static void WriteLegend(IReadOnlyList<CheckResult> results, TextWriter log)
    {
        log.WriteLine();
        log.WriteLine("rel. error: ‖device − host‖ / ‖host‖ over all values of a check; tolerance: what float rounding explains " +
            "(forward values, gradients, single GEMMs); closest: the check whose error is the largest fraction of its tolerance");
        log.WriteLine("model rows: loss, generation, an Adam step, ∂name (the gradient of parameter name), and the activation buffers " +
            "(name[i]: one per layer or block; a D prefix: a gradient of the backward pass):");
        var buffers = results.Where(r => r.Meaning is not null)
            .GroupBy(r => Regex.Replace(r.Name, @"\[\d+\]$", "[i]"))
            .Select(g => (Name: g.Key, Meaning: string.Join(" / ", g.Select(r => r.Meaning).Distinct())));
        foreach (var (buffer, meaning) in buffers) log.WriteLine($"  {buffer,-16} {meaning}");
    }

    static Device AutoDevice()
    {
        try
        {
            return Device.Create("cuda");
        }
        catch (DeviceUnavailableException)
        {
            return Device.Create("ilgpu-cpu");
        }
    }

    static string Format(double value) =>
        double.IsNaN(value) ? "NaN" : double.IsInfinity(value) ? "inf" : value == 0 ? "0" : value.ToString("0.0e+0", CultureInfo.InvariantCulture);
}
