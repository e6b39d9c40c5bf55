using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using Xunit.Abstractions;
using Xunit.Sdk;

// Runs the xunit tests of GateLoop.Runtime.Tests whose "Class.Method" starts with one of the arguments (and with none
// of those given as -PREFIX), each theory over its data rows, and exits 1 if any fails or none matched. What xunit's runner would do for these classes (class
// fixtures, ITestOutputHelper, IDisposable), without the test host, so a self-contained app carries them to another
// architecture: bash .ci/run runs it on linux-arm64 under qemu-aarch64-static.
if (args.Length == 0)
{
    Console.Error.WriteLine("usage: GateLoop.SimdCheck CLASS[.METHOD] ... [-CLASS.METHOD ...] (prefixes of the tests of GateLoop.Runtime.Tests to run, and to leave out)");
    return 2;
}
Console.WriteLine($"{RuntimeInformation.ProcessArchitecture}, SIMD tier {GateLoop.Runtime.HostTier.Name}, lane formulas in {GateLoop.Runtime.HostSimd.LaneBits}-bit registers");
var included = args.Where(a => !a.StartsWith('-')).ToArray();
var excluded = args.Where(a => a.StartsWith('-')).Select(a => a[1..]).ToArray();
bool Selected(string name) => included.Any(a => name.StartsWith(a, StringComparison.Ordinal)) && !excluded.Any(a => name.StartsWith(a, StringComparison.Ordinal));
var assembly = typeof(GateLoop.Runtime.Tests.SimdTierTests).Assembly;
int passed = 0, failed = 0;
var clock = Stopwatch.StartNew();
foreach (var type in assembly.GetTypes().Where(t => t.IsPublic && !t.IsAbstract).OrderBy(t => t.Name))
{
    var tests = type.GetMethods(BindingFlags.Public | BindingFlags.Instance)
        .Where(m => m.GetCustomAttribute<Xunit.FactAttribute>() is { Skip: null })
        .Where(m => Selected($"{type.Name}.{m.Name}")).ToList();
    if (tests.Count == 0) continue;
    var constructor = type.GetConstructors().Single();
    // One instance of each class fixture for the whole class, as xunit does.
    var fixtures = constructor.GetParameters().Where(p => p.ParameterType != typeof(ITestOutputHelper))
        .ToDictionary(p => p.ParameterType, p => Activator.CreateInstance(p.ParameterType)!);
    foreach (var method in tests)
    {
        var rows = method.GetCustomAttributes<DataAttribute>().SelectMany(d => d.GetData(method)).ToList();
        if (method.GetCustomAttribute<Xunit.TheoryAttribute>() is null) rows = [[]];
        foreach (var row in rows)
        {
            string name = $"{type.Name}.{method.Name}({string.Join(", ", row)})";
            var output = new ConsoleOutput();
            object instance = constructor.Invoke([.. constructor.GetParameters().Select(p => p.ParameterType == typeof(ITestOutputHelper) ? output : fixtures[p.ParameterType])]);
            try
            {
                if (method.Invoke(instance, row) is Task task) task.GetAwaiter().GetResult();
                passed++;
            }
            catch (Exception e)
            {
                failed++;
                var cause = e is TargetInvocationException { InnerException: { } inner } ? inner : e;
                Console.WriteLine($"FAIL {name}: {cause.GetType().Name}: {cause.Message}");
                Console.Write(output.Text);
            }
            finally { (instance as IDisposable)?.Dispose(); }
        }
    }
    foreach (var fixture in fixtures.Values) (fixture as IDisposable)?.Dispose();
}
Console.WriteLine($"{passed} passed, {failed} failed in {clock.Elapsed.TotalSeconds:F0} s");
if (passed + failed == 0) Console.WriteLine($"no test matched {string.Join(" ", args)}");
return failed == 0 && passed > 0 ? 0 : 1;

/// <summary>A test's output, shown when it fails.</summary>
sealed class ConsoleOutput : ITestOutputHelper
{
    readonly System.Text.StringBuilder text = new();
    public string Text => text.ToString();
    public void WriteLine(string message) => text.AppendLine(message);
    public void WriteLine(string format, params object[] args) => text.AppendLine(string.Format(format, args));
}
