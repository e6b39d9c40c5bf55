using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Passes
{
    /// <summary>
    /// Checks every launch of a program against its kernel: that the kernel exists, that the arguments are as many
    /// as its parameters, that each binds a view of the parameter's element type or a scalar of its type, and that
    /// the domain, computed in 64 bits, fits the int a launch is indexed by. A domain only the model's constants
    /// decide is checked here (<see cref="Problems"/>, which the generator reports as GL0040 and refuses the
    /// model); one batch and seq decide is listed in <see cref="PlanDomains"/> for the runtime's plan check.
    /// </summary>
    internal sealed class LaunchCheck
    {
        /// <summary>The most indices one launch can have: <c>Device.Launch</c> takes an int.</summary>
        public const long MaxDomain = int.MaxValue;

        public LaunchCheck(Program program, IReadOnlyDictionary<string, long> constants)
        {
            string Resolve(string element) => element == Value.Real ? program.Numeric.Type : element;
            var problems = new List<string>();
            var domains = new List<(string, Size)>();
            // A decoding launch runs at its branch's largest shape only: it is checked here, at that shape.
            var decoding = new HashSet<Step>(program.Where(Decoding.Condition));
            var decodingShape = new Dictionary<string, long>(constants.ToDictionary(c => c.Key, c => c.Value))
            {
                ["batch"] = Decoding.RowsAtMost, ["seq"] = 1, ["rows"] = Decoding.RowsAtMost, ["Batch"] = Decoding.RowsAtMost, ["Seq"] = 1,
                ["R"] = Decoding.RowsAtMost, ["Rows"] = Decoding.RowsAtMost, ["Chunks"] = 1, ["Kernels.RowLanes"] = LaneRow.Warp,
            };
            foreach (var launch in program.Steps.OfType<Launch>())
            {
                if (launch.Signature is null)
                {
                    problems.Add($"launch of {launch.Kernel}: no op contributes a kernel of that name");
                    continue;
                }
                var parameters = launch.Signature.Parameters;
                if (parameters.Count != launch.Args.Count)
                    problems.Add($"launch of {launch.Kernel} passes {launch.Args.Count} arguments to its {parameters.Count} parameters ({string.Join(", ", parameters.Select(p => p.Name))})");
                foreach (var (parameter, arg) in launch.Bindings)
                {
                    bool view = arg is not ScalarArg;
                    string expected = parameter.ViewElement ?? parameter.Type;
                    if (view != (parameter.ViewElement is not null) || Resolve(arg.Element) != expected)
                        problems.Add($"launch of {launch.Kernel} binds {Describe(arg, Resolve)} to {parameter.Type} {parameter.Name}");
                }
                bool decodes = decoding.Contains(launch);
                if (!launch.Domain.OnPlan || decodes)
                {
                    long? size = launch.Domain.Evaluate(decodes ? decodingShape : constants);
                    if (size is null) problems.Add($"launch of {launch.Kernel}: its domain {launch.Domain} names something that is not a size");
                    else if (size > MaxDomain) problems.Add($"launch of {launch.Kernel} has {size:N0} indices ({launch.Domain}), more than a launch can index ({MaxDomain:N0})");
                }
                else if (!domains.Any(d => d.Item2.Text == launch.Domain.Text)) domains.Add((launch.Kernel, launch.Domain));
            }
            Problems = problems;
            PlanDomains = domains;
        }

        /// <summary>What is wrong with the program's launches, one sentence each; empty when nothing is.</summary>
        public IReadOnlyList<string> Problems { get; }

        /// <summary>Each distinct domain batch and seq decide, with the first kernel launched over it.</summary>
        public IReadOnlyList<(string Kernel, Size Domain)> PlanDomains { get; }

        static string Describe(Arg arg, System.Func<string, string> resolve) => arg switch
        {
            TensorArg t => $"the view {t.Value.Name} of {resolve(t.Element)}",
            ParamArg p => $"the view of {p.Param.Field} of {resolve(p.Element)}",
            ScalarArg s => $"the {resolve(s.Type)} {s.Expr}",
            _ => arg.ToString(),
        };
    }
}
