using System.Numerics;

namespace GateLoop.Runtime;

/// <summary>
/// A model's plans by (batch, sequence length, whether activations are kept in bf16). Training alternates with sampling (a prompt shape, then one token at
/// a time), so the few most recent plans are kept instead of being reallocated on every switch; a new one is checked
/// against the device's memory and the launches' index range before anything is allocated.
/// </summary>
internal sealed class PlanCache<T>(Device device, Func<int, int, bool, ModelPlan<T>> create, Func<int, int, bool, long> planBytes,
    Func<int, int, (long Indices, string Kernel)> largestLaunch, long residentBytes, string owner) : IDisposable
    where T : unmanaged, IFloatingPoint<T>
{
    const int KeptPlans = 3;

    // Least recently used first.
    readonly List<ModelPlan<T>> plans = [];

    /// <summary>Whether <paramref name="plan"/> is still allocated (not evicted by newer shapes).</summary>
    public bool Holds(ModelPlan<T> plan) => plans.Contains(plan);

    /// <summary>The most recently used plan, or null before the first.</summary>
    public ModelPlan<T>? Latest => plans.Count == 0 ? null : plans[^1];

    /// <summary>The plan for (<paramref name="batch"/>, <paramref name="seq"/>, <paramref name="bf16"/>), made if none is kept.</summary>
    public ModelPlan<T> Use(int batch, int seq, bool bf16)
    {
        int found = plans.FindIndex(p => p.Batch == batch && p.Seq == seq && p.KeepsBf16 == bf16);
        ModelPlan<T> plan;
        if (found >= 0)
        {
            plan = plans[found];
            plans.RemoveAt(found);
        }
        else
        {
            if (plans.Count == KeptPlans)
            {
                plans[0].Workspace.Dispose();
                plans.RemoveAt(0);
            }
            // The resident memory (weights, gradients, Adam's two moments) and the plans kept stay beside the new one.
            // A plan that fits can still have a launch past what an int indexes (attention's batch·heads·seq² scores).
            device.EnsureFits(planBytes(batch, seq, bf16), residentBytes + plans.Sum(p => p.Workspace.Bytes),
                $"a plan of {batch:N0} × {seq:N0} tokens for {owner}");
            Device.EnsureLaunchable(largestLaunch(batch, seq), $"a plan of batch {batch:N0} × seq {seq:N0} for {owner}");
            plan = create(batch, seq, bf16);
        }
        plans.Add(plan);
        return plan;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var plan in plans) plan.Workspace.Dispose();
        plans.Clear();
    }
}
