using System.Linq;
using Microsoft.CodeAnalysis;

namespace GateLoop.Generator
{
    /// <summary>Every diagnostic the generator reports. Ids are stable: tests and users' suppressions rely on them.</summary>
    internal static class Diagnostics
    {
        const string Category = "GateLoop";

        public static readonly DiagnosticDescriptor NotPartial = Error("GL0001",
            "Model class must be partial",
            "'{0}' must be declared 'partial' so the GateLoop generator can add the model's kernels to it (a model nested in other types needs them partial too)");

        public static readonly DiagnosticDescriptor GenericContext = Error("GL0002",
            "Model class cannot be generic or nested in a generic type",
            "'{0}' is generic or nested in a generic type; declare the model in a non-generic class or namespace");

        public static readonly DiagnosticDescriptor NonPositive = Error("GL0003",
            "Model size must be positive",
            "{0} is {1}; set it to a positive integer");

        public static readonly DiagnosticDescriptor Negative = Error("GL0004",
            "Model size cannot be negative",
            "{0} is {1}; use 0 for the default ({2}) or a positive integer");

        public static readonly DiagnosticDescriptor HeadsDoNotDivide = Error("GL0005",
            "Gate-loop heads must divide the inner width",
            "DimGateLoopedAttn ({0}) is not divisible by GateLoopHeads ({1}); choose a head count that divides {0}, or 0 for one head per channel");

        public static readonly DiagnosticDescriptor FracGradientOutOfRange = Error("GL0006",
            "FracGradientStateTransition must lie in [0, 1]",
            "FracGradientStateTransition is {0}; it scales a gradient and must lie between 0 and 1");

        public static readonly DiagnosticDescriptor HasBaseClass = Error("GL0007",
            "Model class cannot declare a base class",
            "'{0}' derives from '{1}'; remove the base class, the generator supplies it (GateLoop.Runtime.TransformerModel or SimpleGateLoopLayer)");

        public static readonly DiagnosticDescriptor UnknownPrecision = Error("GL0008",
            "Unknown GateLoopPrecision",
            "The MSBuild property GateLoopPrecision is '{0}'; use 'float' (the default) or 'double'");

        public static readonly DiagnosticDescriptor TooLarge = Error("GL0009",
            "Model is too large",
            "{0} would have {1} elements, more than the 2,147,483,647 one buffer can index; reduce Dim, DimGateLoopedAttn, Depth, NumTokens or FeedForwardMult");

        public static readonly DiagnosticDescriptor StaticModel = Error("GL0010",
            "Model class cannot be static",
            "'{0}' is static; remove 'static', a model is an object that owns device buffers");

        public static readonly DiagnosticDescriptor ReservedName = Error("GL0011",
            "Model class name collides with a generated member",
            "A model cannot be named '{0}': the generator adds a member of that name to the class; rename the class");

        public static readonly DiagnosticDescriptor OddHeadWidth = Error("GL0012",
            "Attention head width must be even",
            "DimHead is {0}, but {1} works on pairs of channels; use an even DimHead");

        public static readonly DiagnosticDescriptor OtherMixerOption = Error("GL0013",
            "Option of the other token mixer",
            "{0} only applies to {1}; remove it, or switch UseGateLoopedAttn");

        public static readonly DiagnosticDescriptor LayerAndModel = Error("GL0020",
            "A class cannot be both a GateLoop model and a SimpleGateLoop layer",
            "'{0}' carries both [GateLoopTransformer] and [SimpleGateLoop]; a class is either a model or a layer, declare each on its own class");

        public static readonly DiagnosticDescriptor BadLaunch = Error("GL0040",
            "A launch the model cannot run",
            "The generated schedule cannot run: {0}; change the sizes the declaration sets");

        // Reported at the end of a compilation, once every kernel's callees are known (hence the CompilationEnd tag).
        public static readonly DiagnosticDescriptor PtxHazard = new DiagnosticDescriptor("GL0030",
            "Kernel construct that ILGPU's PTX backend miscompiles",
            "{0}: {1} computes something else on CUDA: {2}; {3}",
            Category, DiagnosticSeverity.Error, isEnabledByDefault: true, customTags: WellKnownDiagnosticTags.CompilationEnd);

        static readonly DiagnosticDescriptor[] All =
        {
            NotPartial, GenericContext, NonPositive, Negative, HeadsDoNotDivide, FracGradientOutOfRange, HasBaseClass, UnknownPrecision,
            TooLarge, StaticModel, ReservedName, OddHeadWidth, OtherMixerOption,
            LayerAndModel, BadLaunch,
        };

        public static DiagnosticDescriptor ById(string id) => All.First(d => d.Id == id);

        static DiagnosticDescriptor Error(string id, string title, string message) =>
            new DiagnosticDescriptor(id, title, message, Category, DiagnosticSeverity.Error, isEnabledByDefault: true);
    }
}
