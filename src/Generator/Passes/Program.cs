using System.Collections.Generic;
using System.Linq;
using GateLoop.Generator.Ir;
using GateLoop.Generator.Templates;

namespace GateLoop.Generator.Passes
{
    /// <summary>
    /// A graph's schedules as steps: the ops' forwards (globals, one layer's, the head's), the loss, and their
    /// backwards in reverse order (the head's, one layer's, the globals'), each launch bound to its kernel. Once
    /// built, every value has its identity, the step that writes it first and the steps that read it, so passes can
    /// reason about the program and Emit/ only renders it.
    /// </summary>
    internal sealed class Program
    {
        public Program(Graph graph, Numeric numeric)
        {
            Numeric = numeric;
            Kernels = graph.Kernels(numeric).ToList();
            var signatures = Signatures;

            IReadOnlyList<Step> Build(Schedule s, IEnumerable<Op> ops, bool forward)
            {
                foreach (var op in ops)
                    if (forward) op.Forward(s);
                    else op.Backward(s);
                return s.Steps;
            }
            ForwardGlobal = Build(new Schedule(numeric, signatures), graph.Global, true);
            ForwardLayer = Build(new Schedule(numeric, signatures), graph.Layer, true);
            ForwardHead = Build(new Schedule(numeric, signatures), graph.Head, true);
            Loss = graph.Loss is null ? new Step[0] : Build(new Schedule(numeric, signatures), new[] { graph.Loss }, true);
            // One backward: which gradients hold a sum carries from the head's ops through the layer's to the globals'.
            var backward = new Schedule(numeric, signatures);
            BackwardHead = Build(backward, graph.Head.Reverse(), false).ToList();
            int head = BackwardHead.Count;
            BackwardLayer = Build(backward, graph.Layer.Reverse(), false).Skip(head).ToList();
            BackwardGlobal = Build(backward, graph.Global.Reverse(), false).Skip(head + BackwardLayer.Count).ToList();
            Dataflow();
        }

        public Numeric Numeric { get; }

        /// <summary>The kernel sources the program launches from (and those that define no kernel), each key once.</summary>
        public IReadOnlyList<KernelSource> Kernels { get; private set; }

        /// <summary>Every kernel the sources define, by name.</summary>
        public IReadOnlyDictionary<string, KernelSignature> Signatures
        {
            get
            {
                var signatures = new Dictionary<string, KernelSignature>();
                foreach (var kernel in Kernels.SelectMany(k => KernelSignature.Read(k.Kernel))) signatures[kernel.Name] = kernel;
                return signatures;
            }
        }

        /// <summary>The method of kernel <paramref name="name"/> and the source that defines it.</summary>
        public (Microsoft.CodeAnalysis.CSharp.Syntax.MethodDeclarationSyntax Method, KernelSource Source)? Kernel(string name)
        {
            foreach (var source in Kernels)
                foreach (var method in KernelText.Methods(source.Kernel))
                    if (method.Identifier.Text == name) return (method, source);
            return null;
        }

        public IReadOnlyList<Step> ForwardGlobal { get; private set; }
        public IReadOnlyList<Step> ForwardLayer { get; private set; }
        public IReadOnlyList<Step> ForwardHead { get; private set; }
        public IReadOnlyList<Step> Loss { get; private set; }
        public IReadOnlyList<Step> BackwardHead { get; private set; }
        public IReadOnlyList<Step> BackwardLayer { get; private set; }
        public IReadOnlyList<Step> BackwardGlobal { get; private set; }

        /// <summary>Every step, in the order the schedules run them (a layer's once), choices' branches after the choice.</summary>
        public IEnumerable<Step> Steps => new[] { ForwardGlobal, ForwardLayer, ForwardHead, Loss, BackwardHead, BackwardLayer, BackwardGlobal }
            .SelectMany(list => list).SelectMany(s => s.Flatten());

        /// <summary>The steps a choice by <paramref name="condition"/> runs where it holds (its Then branches, flattened).</summary>
        public IEnumerable<Step> Where(string condition) =>
            Steps.OfType<Choice>().Where(c => c.Condition == condition).SelectMany(c => c.Then.SelectMany(s => s.Flatten()));

        /// <summary>Every value the schedules touch, by identity.</summary>
        public IReadOnlyList<Value> Values { get; private set; } = new Value[0];

        /// <summary>
        /// Rewrites every schedule with <paramref name="rule"/>, which may turn two adjacent launches into one launch of
        /// a kernel it makes (a fusion), tried again on what it made; then keeps only the kernel sources a launch still
        /// uses (and those that define no kernel: constants and helpers), adds the new ones, and recomputes the values'
        /// producers and consumers.
        /// </summary>
        public void Rewrite(System.Func<Program, Launch, Launch, (Launch, KernelSource)?> rule)
        {
            IReadOnlyList<Step> Apply(IReadOnlyList<Step> steps)
            {
                var result = new List<Step>();
                foreach (var step in steps)
                {
                    var current = step is Choice c ? new Choice(c.Condition, Apply(c.Then), Apply(c.Otherwise)) : step;
                    if (result.Count > 0 && result[result.Count - 1] is Launch first && current is Launch second && rule(this, first, second) is var (fused, source))
                    {
                        result[result.Count - 1] = fused;
                        if (!Kernels.Any(k => k.Key == source.Key)) Kernels = Kernels.Concat(new[] { source }).ToList(); // a later match reads it
                        continue;
                    }
                    result.Add(current);
                }
                return result;
            }
            (ForwardGlobal, ForwardLayer, ForwardHead, Loss) = (Apply(ForwardGlobal), Apply(ForwardLayer), Apply(ForwardHead), Apply(Loss));
            (BackwardHead, BackwardLayer, BackwardGlobal) = (Apply(BackwardHead), Apply(BackwardLayer), Apply(BackwardGlobal));
            Retain();
        }

        // Keeps the kernel sources a launch uses (and those that define no kernel), then recomputes the dataflow.
        void Retain()
        {
            var launched = new HashSet<string>(Steps.OfType<Launch>().Select(l => l.Kernel));
            Kernels = Kernels.Where(k => KernelSignature.Read(k.Kernel).Select(s => s.Name).ToList() is var names && (names.Count == 0 || names.Any(launched.Contains)))
                .ToList();
            Dataflow();
        }

        /// <summary>
        /// Like <see cref="Rewrite"/>, across a choice: a launch before one (past steps that touch none of its values)
        /// that <paramref name="rule"/> fuses with a branch's first launch, or a launch after one that it fuses with a
        /// branch's last, moves into both branches, fused where the rule fuses it and as it was in the others.
        /// </summary>
        public void RewriteChoices(System.Func<Program, Launch, Launch, (Launch, KernelSource)?> rule)
        {
            // A branch with the launch fused at its start or end, or put there unfused; null when the rule fuses nothing.
            Choice? Into(Choice choice, Launch launch, bool atStart)
            {
                var branches = new[] { choice.Then, choice.Otherwise }.Select(branch =>
                {
                    var list = branch.ToList();
                    var edge = list.Count == 0 ? null : (atStart ? list[0] : list[list.Count - 1]) as Launch;
                    var fused = edge is null ? null : atStart ? rule(this, launch, edge) : rule(this, edge, launch);
                    if (fused is var (step, source))
                    {
                        list[atStart ? 0 : list.Count - 1] = step;
                        if (!Kernels.Any(k => k.Key == source.Key)) Kernels = Kernels.Concat(new[] { source }).ToList();
                    }
                    else if (atStart) list.Insert(0, launch);
                    else list.Add(launch);
                    return (List: (IReadOnlyList<Step>)list, Fused: fused is not null);
                }).ToList();
                return branches.Any(b => b.Fused) ? new Choice(choice.Condition, branches[0].List, branches[1].List) : null;
            }
            IReadOnlyList<Step> Apply(IReadOnlyList<Step> steps)
            {
                var result = steps.Select(s => s is Choice c ? new Choice(c.Condition, Apply(c.Then), Apply(c.Otherwise)) : s).ToList();
                for (int i = 0; i < result.Count; i++)
                {
                    if (result[i] is not Choice choice) continue;
                    int before = i - 1;
                    while (before >= 0 && result[before] is not Launch && result[before] is not Choice) before--;
                    if (before >= 0 && result[before] is Launch launch && result.Skip(before + 1).Take(i - before - 1).All(s => Independent(s, launch))
                        && Into(choice, launch, atStart: true) is { } moved)
                    {
                        result.RemoveAt(before);
                        result[--i] = choice = moved;
                    }
                    if (i + 1 < result.Count && result[i + 1] is Launch after && Into(choice, after, atStart: false) is { } joined)
                    {
                        result[i] = joined;
                        result.RemoveAt(i + 1);
                    }
                }
                return result;
            }
            (ForwardGlobal, ForwardLayer, ForwardHead, Loss) = (Apply(ForwardGlobal), Apply(ForwardLayer), Apply(ForwardHead), Apply(Loss));
            (BackwardHead, BackwardLayer, BackwardGlobal) = (Apply(BackwardHead), Apply(BackwardLayer), Apply(BackwardGlobal));
            Retain();
        }

        /// <summary>
        /// Moves each Linear product up to just after the last earlier product of the same input, past the steps in
        /// between when none of them writes what it reads or touches what it writes: the products of one input then
        /// run together, and an op they separated from its producer (the swish gate from the scan) follows it.
        /// </summary>
        public void GroupProducts()
        {
            IReadOnlyList<Step> Apply(IReadOnlyList<Step> steps)
            {
                var result = steps.ToList();
                for (int i = 0; i < result.Count; i++)
                {
                    if (i == 0 || result[i] is not LinearProduct product) continue;
                    int last = result.FindLastIndex(i - 1, i, s => s is LinearProduct p && p.X == product.X);
                    if (last < 0 || last == i - 1 || !result.Skip(last + 1).Take(i - last - 1).All(s => Independent(s, product))) continue;
                    result.RemoveAt(i);
                    result.Insert(last + 1, product);
                }
                return result;
            }
            (ForwardGlobal, ForwardLayer, ForwardHead, Loss) = (Apply(ForwardGlobal), Apply(ForwardLayer), Apply(ForwardHead), Apply(Loss));
            Dataflow();
        }

        /// <summary>
        /// Makes each forward schedule (the globals', a layer's, the head's) that <paramref name="variant"/> rewrites
        /// one choice by <paramref name="condition"/>: the variant where it holds, the steps as they were where not.
        /// Later rewrites apply inside both, so each keeps its own fusions.
        /// </summary>
        public void Branch(string condition, System.Func<Program, IReadOnlyList<Step>, (IReadOnlyList<Step> Steps, IReadOnlyList<KernelSource> Sources)?> variant)
        {
            IReadOnlyList<Step> Apply(IReadOnlyList<Step> steps)
            {
                if (variant(this, steps) is not var (then, sources)) return steps;
                Kernels = Kernels.Concat(sources.Where(s => !Kernels.Any(k => k.Key == s.Key))).ToList();
                return new Step[] { new Choice(condition, then, steps) };
            }
            (ForwardGlobal, ForwardLayer, ForwardHead) = (Apply(ForwardGlobal), Apply(ForwardLayer), Apply(ForwardHead));
            Retain();
        }

        /// <summary>
        /// Puts each choice by <paramref name="condition"/> inside the branches where <paramref name="within"/> holds
        /// as its other branch: the condition never holds there, so the schedule does not ask it.
        /// </summary>
        public void Never(string condition, string within)
        {
            IReadOnlyList<Step> Apply(IReadOnlyList<Step> steps, bool inside) => steps.SelectMany(s => s is Choice c
                ? inside && c.Condition == condition ? Apply(c.Otherwise, true)
                    : new Step[] { new Choice(c.Condition, Apply(c.Then, inside || c.Condition == within), Apply(c.Otherwise, inside)) }
                : new[] { s }).ToList();
            (ForwardGlobal, ForwardLayer, ForwardHead) = (Apply(ForwardGlobal, false), Apply(ForwardLayer, false), Apply(ForwardHead, false));
            Retain();
        }

        // Whether two steps can run in either order: neither writes what the other touches (a choice by all its branches).
        static bool Independent(Step a, Step b)
        {
            IEnumerable<Value> Reads(Step s) => s.Flatten().SelectMany(x => x.Reads);
            IEnumerable<Value> Writes(Step s) => s.Flatten().SelectMany(x => x.Writes);
            return !Writes(a).Intersect(Reads(b).Concat(Writes(b))).Any() && !Writes(b).Intersect(Reads(a)).Any();
        }

        void Dataflow()
        {
            var values = new List<Value>();
            void Touch(Value v)
            {
                if (v.Id >= 0 && values.Count > v.Id && values[v.Id] == v) return;
                v.Id = values.Count;
                values.Add(v);
                v.Producer = null;
                v.Consumers.Clear();
            }
            foreach (var step in Steps)
            {
                foreach (var v in step.Reads.Concat(step.Writes)) Touch(v);
                foreach (var v in step.Reads) v.Consumers.Add(step);
                foreach (var v in step.Writes) v.Producer ??= step;
            }
            Values = values;
        }
    }
}
