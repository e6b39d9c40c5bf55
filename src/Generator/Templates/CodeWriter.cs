using System.Text;

namespace GateLoop.Generator.Templates
{
    /// <summary>A line writer that keeps indentation, so generated code reads like hand-written code.</summary>
    internal sealed class CodeWriter
    {
        readonly StringBuilder text = new StringBuilder();
        int depth;

        public CodeWriter Line(string line = "")
        {
            if (line.Length > 0) text.Append(' ', depth * 4);
            text.Append(line).Append('\n');
            return this;
        }

        /// <summary>Writes a multi-line block (e.g. a kernel template) at the current indentation.</summary>
        public CodeWriter Block(string block)
        {
            foreach (var line in block.Replace("\r\n", "\n").Split('\n')) Line(line.TrimEnd());
            return this;
        }

        public CodeWriter Open(string header)
        {
            Line(header);
            Line("{");
            depth++;
            return this;
        }

        public CodeWriter Close(string suffix = "")
        {
            depth--;
            return Line("}" + suffix);
        }

        public override string ToString() => text.ToString();

        /// <summary>Indents every line of a flush-left snippet after the first to the column it is inserted at.</summary>
        public static string Indent(string snippet, int spaces) =>
            string.Join("\n" + new string(' ', spaces), snippet.Replace("\r\n", "\n").Split('\n'));
    }
}
