using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Model;

namespace GateLoop.Generator.Emit
{
    /// <summary>One tensor: PyTorch name (with {i} for the layer), shape as constant expressions and values, init rule.</summary>
    internal sealed class Tensor
    {
        public Tensor(string field, string name, (string Expr, int Value)[] shape, string init, int fanIn)
        {
            Field = field;
            Name = name;
            Shape = shape;
            Init = init;
            FanIn = fanIn;
        }

        /// <summary>The C# constant holding the tensor's offset (within its layer for layer tensors).</summary>
        public string Field { get; }
        public string Name { get; }
        public (string Expr, int Value)[] Shape { get; }
        public string Init { get; }
        public int FanIn { get; }
        public long Length => Shape.Aggregate(1L, (a, s) => a * s.Value);
        public string LengthExpr => string.Join(" * ", Shape.Select(s => s.Expr));
        public long Offset { get; set; }
    }

    /// <summary>
    /// The flat parameter buffer: the token embedding, then Depth layers of equal stride, then the head — the
    /// order of the PyTorch state_dict, so a checkpoint maps tensor by tensor.
    /// </summary>
    internal sealed class ParameterLayout
    {
        public ParameterLayout(TransformerSpec s)
        {
            var dim = ("Dim", s.Dim);
            var hidden = ("Hidden", s.Hidden);
            var vocab = ("NumTokens", s.NumTokens);

            Global.Add(new Tensor("TokenEmb", "token_emb.weight", new[] { vocab, dim }, "Normal", 0));

            const string mix = "layers.{i}.0.", ff = "layers.{i}.1.";
            if (s.UseGateLoopedAttn) GateLoopTensors(s, mix);
            else AttentionTensors(s, mix);
            AddNorm(s, "Mix", mix);
            Layer.Add(new Tensor("Ff1W", ff + "fn.0.weight", new[] { hidden, dim }, "Uniform", s.Dim));
            Layer.Add(new Tensor("Ff1B", ff + "fn.0.bias", new[] { hidden }, "Uniform", s.Dim));
            Layer.Add(new Tensor("Ff2W", ff + "fn.2.weight", new[] { dim, hidden }, "Uniform", s.Hidden));
            Layer.Add(new Tensor("Ff2B", ff + "fn.2.bias", new[] { dim }, "Uniform", s.Hidden));
            AddNorm(s, "Ff", ff);

            if (s.PostLayerNorm)
                Head.Add(new Tensor("HeadW", "to_logits.weight", new[] { vocab, dim }, "Uniform", s.Dim));
            else
            {
                Head.Add(new Tensor("HeadNormG", "to_logits.0.gamma", new[] { dim }, "Ones", 0));
                Head.Add(new Tensor("HeadW", "to_logits.1.weight", new[] { vocab, dim }, "Uniform", s.Dim));
            }

            long offset = 0;
            foreach (var t in Global) { t.Offset = offset; offset += t.Length; }
            LayerStart = offset;
            long local = 0;
            foreach (var t in Layer) { t.Offset = local; local += t.Length; }
            LayerStride = local;
            offset += local * s.Depth;
            foreach (var t in Head) { t.Offset = offset; offset += t.Length; }
            Total = offset;
        }

        void GateLoopTensors(TransformerSpec s, string mix)
        {
            var dim = ("Dim", s.Dim);
            var inner = ("DimInner", s.DimInner);
            Layer.Add(new Tensor("Qkv", mix + "fn.to_qkv.weight", new[] { ("3 * DimInner", 3 * s.DimInner), dim }, "Uniform", s.Dim));
            Layer.Add(new Tensor("TransitionW", mix + "fn.to_a.0.weight", new[] { ("2 * Heads", 2 * s.Heads), dim }, "Uniform", s.Dim));
            Layer.Add(new Tensor("TransitionB", mix + "fn.to_a.0.bias", new[] { ("2 * Heads", 2 * s.Heads) }, "Uniform", s.Dim));
            if (s.SubLayerNorm)
            {
                Layer.Add(new Tensor("SubNormW", mix + "fn.maybe_sub_ln.weight", new[] { inner }, "Ones", 0));
                Layer.Add(new Tensor("SubNormB", mix + "fn.maybe_sub_ln.bias", new[] { inner }, "Zeros", 0));
            }
            if (s.SwishGating) Layer.Add(new Tensor("GatesW", mix + "fn.to_gates.0.weight", new[] { inner, dim }, "Uniform", s.Dim));
            if (s.HasOutProjection) Layer.Add(new Tensor("OutW", mix + "fn.to_out.weight", new[] { dim, inner }, "Uniform", s.DimInner));
        }

        // The seed's CausalFullAttention: its rotary frequencies are a (frozen) parameter of the state_dict too.
        void AttentionTensors(TransformerSpec s, string mix)
        {
            var dim = ("Dim", s.Dim);
            var inner = ("DimInner", s.DimInner);
            if (s.RotaryEmbedding)
                Layer.Add(new Tensor("RotaryFreqs", mix + "fn.rotary_emb.freqs", new[] { ("HeadDim / 2", s.HeadDim / 2) }, "RotaryFrequencies", 0));
            Layer.Add(new Tensor("Qkv", mix + "fn.to_qkv.0.weight", new[] { ("3 * DimInner", 3 * s.DimInner), dim }, "Uniform", s.Dim));
            if (s.DataDependentRelPos) Layer.Add(new Tensor("RelPosW", mix + "fn.to_a.0.weight", new[] { inner, dim }, "Uniform", s.Dim));
            if (s.SwishGating) Layer.Add(new Tensor("GatesW", mix + "fn.to_gates.0.weight", new[] { inner, dim }, "Uniform", s.Dim));
            Layer.Add(new Tensor("OutW", mix + "fn.to_out.1.weight", new[] { dim, inner }, "Uniform", s.DimInner));
            Layer.Add(new Tensor("OutB", mix + "fn.to_out.1.bias", new[] { dim }, "Uniform", s.DimInner));
        }

        void AddNorm(TransformerSpec s, string prefix, string module)
        {
            var dim = new[] { ("Dim", s.Dim) };
            if (s.PostLayerNorm)
            {
                Layer.Add(new Tensor(prefix + "NormW", module + "norm.weight", dim, "Ones", 0));
                Layer.Add(new Tensor(prefix + "NormB", module + "norm.bias", dim, "Zeros", 0));
            }
            else Layer.Add(new Tensor(prefix + "NormG", module + "norm.gamma", dim, "Ones", 0));
        }

        public List<Tensor> Global { get; } = new List<Tensor>();
        public List<Tensor> Layer { get; } = new List<Tensor>();
        public List<Tensor> Head { get; } = new List<Tensor>();
        public long LayerStart { get; }
        public long LayerStride { get; }
        public long Total { get; }

        public Tensor this[string field] => Global.Concat(Layer).Concat(Head).First(t => t.Field == field);
    }
}
