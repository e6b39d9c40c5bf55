using GateLoop.Runtime;
using GateLoop.Tests.Shared;

namespace GateLoop.Runtime.Tests;

/// <summary>Loading a checkpoint directory whose safetensors files do not fit the model or the optimizer.</summary>
public sealed class CheckpointTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("gateloop-checkpoint-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    /// <summary>Rewrites a safetensors file of the checkpoint, its tensors renamed and its metadata replaced.</summary>
    static void Rewrite(string path, Func<string, string> rename, Dictionary<string, string> metadata)
    {
        var file = SafeTensors.Read(path);
        SafeTensors.Write(path, file.Tensors.Values.Select(t => (rename(t.Name), t.Shape, (ReadOnlyMemory<float>)t.Data)), metadata);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("x")]
    public void The_optimizer_step_must_be_a_count(string step)
    {
        using var device = Device.Create("cpu");
        using var model = new PostHeadsGated(device);
        using var adam = new Adam(model, new AdamOptions());
        Checkpoint.Save(directory, model, adam, new CheckpointConfig { Model = "PostHeadsGated", Hyperparameters = [] });
        var path = Path.Combine(directory, CheckpointDirectory.OptimizerFileName);
        Rewrite(path, name => name, new Dictionary<string, string> { ["step"] = step });
        Assert.Equal($"'{path}' has no optimizer step (a whole number, 0 or more) in its metadata; the checkpoint is damaged, use another one",
            Assert.Throws<UserInputException>(() => Checkpoint.Load(directory, model, adam)).Message);
        Assert.Equal(0, adam.Step);
    }

    [Fact]
    public void Unexpected_tensor_names_are_quoted_on_one_line()
    {
        using var device = Device.Create("cpu");
        using var model = new PostHeadsGated(device);
        var path = Path.Combine(directory, CheckpointDirectory.ModelFileName);
        WeightFile.Save(model, path);
        Rewrite(path, name => name == "token_emb.weight" ? "token\nemb" : name, []);
        Assert.Equal($"'{path}' does not fit model 'PostHeadsGated': missing token_emb.weight; unexpected token\\nemb",
            Assert.Throws<UserInputException>(() => WeightFile.Load(model, path)).Message);
    }
}
