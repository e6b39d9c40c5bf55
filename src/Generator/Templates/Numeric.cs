using System.Globalization;

namespace GateLoop.Generator.Templates
{
    /// <summary>The element type the kernels are emitted for: float for real work, double to verify gradients.</summary>
    internal sealed class Numeric
    {
        /// <summary>
        /// The runtime's namespace as generated code names its types, fully qualified: ILGPU.Runtime has a Device
        /// too, and users may have their own.
        /// </summary>
        public const string Runtime = "global::GateLoop.Runtime.";

        Numeric(string type, string math, string suffix)
        {
            Type = type;
            Math = math;
            this.suffix = suffix;
        }

        readonly string suffix;

        public static readonly Numeric Float = new Numeric("float", "global::System.MathF", "f");
        public static readonly Numeric Double = new Numeric("double", "global::System.Math", "");

        /// <summary>The C# element type.</summary>
        public string Type { get; }

        /// <summary>The math class whose methods ILGPU maps to device intrinsics for this type.</summary>
        public string Math { get; }

        public bool IsDouble => Type == "double";

        /// <summary>A literal of the element type, e.g. <c>1E-05f</c>.</summary>
        public string Lit(double value)
        {
            var text = value.ToString("R", CultureInfo.InvariantCulture);
            if (!IsDouble) text = ((float)value).ToString("R", CultureInfo.InvariantCulture);
            if (suffix.Length == 0 && text.IndexOfAny(new[] { '.', 'E', 'e' }) < 0) text += ".0";
            return text + suffix;
        }

        /// <summary>Maps the MSBuild property GateLoopPrecision (empty means float) to a numeric type.</summary>
        public static Numeric? FromPrecision(string value) =>
            value.Length == 0 || value == "float" ? Float : value == "double" ? Double : null;
    }
}
