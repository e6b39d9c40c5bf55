using GateLoop.Tests.Shared;

namespace GateLoop.Runtime.Tests;

/// <summary>
/// A checkpoint is one unit. Every state a save can be cut short in, the staging of the next checkpoint partly
/// written or partly moved into place, reads as one complete checkpoint (the previous or the new), the next save
/// finishes what was cut short, and files of different saves put together are refused.
/// </summary>
public sealed class CheckpointUnitTests : IDisposable
{
    readonly string root = Path.Combine(Path.GetTempPath(), "gateloop-unit-" + Guid.NewGuid().ToString("N")[..8]);
    readonly Device device = Device.Create("cpu");
    readonly PostHeadsGated model;
    readonly Adam adam;

    public CheckpointUnitTests()
    {
        model = new PostHeadsGated(device);
        adam = new Adam(model, new AdamOptions());
    }

    public void Dispose()
    {
        adam.Dispose();
        model.Dispose();
        device.Dispose();
        Directory.Delete(root, recursive: true);
    }

    static readonly string[] Files = [CheckpointDirectory.ModelFileName, CheckpointDirectory.OptimizerFileName, CheckpointDirectory.ConfigFileName];

    // Saves the model with weights from seed at step into directory.
    float[] Save(string directory, int seed, long step)
    {
        model.Initialize(seed);
        adam.Step = step;
        Checkpoint.Save(directory, model, adam, new CheckpointConfig { Model = "post", Hyperparameters = [], Step = step });
        return model.ReadWeights();
    }

    (long Step, float[] Weights) Read(string directory)
    {
        var config = Checkpoint.ReadConfig(directory);
        Checkpoint.Load(directory, model, adam);
        Assert.Equal(config.Step, adam.Step);
        return (config.Step, model.ReadWeights());
    }

    /// <summary>
    /// The directory after a save of step 2 was cut short over one of step 1: the staged files written so far, and of
    /// those, the first <paramref name="moved"/> (in commit order: weights, optimizer, config) already moved up.
    /// </summary>
    (string Directory, float[] Old, float[] New) CutShort(int staged, int moved)
    {
        string dir = Path.Combine(root, $"cut-{staged}-{moved}"), next = Path.Combine(root, $"next-{staged}-{moved}");
        var old = Save(dir, 1, 1);
        var fresh = Save(next, 2, 2);
        string staging = Path.Combine(dir, CheckpointDirectory.StagingDirectoryName);
        Directory.CreateDirectory(staging);
        for (int i = 0; i < staged; i++)
            File.Copy(Path.Combine(next, Files[i]), Path.Combine(i < moved ? dir : staging, Files[i]), overwrite: true);
        return (dir, old, fresh);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 0)]
    [InlineData(2, 0)]
    public void While_the_next_checkpoint_is_staged_the_previous_one_is_read(int staged, int moved)
    {
        var (dir, old, _) = CutShort(staged, moved);
        var (step, weights) = Read(dir);
        Assert.Equal(1, step);
        Assert.Equal(old, weights);
    }

    [Theory]
    [InlineData(3, 0)]
    [InlineData(3, 1)]
    [InlineData(3, 2)]
    [InlineData(3, 3)]
    public void Once_it_is_staged_whole_the_new_one_is_read_wherever_its_files_are(int staged, int moved)
    {
        var (dir, _, fresh) = CutShort(staged, moved);
        var (step, weights) = Read(dir);
        Assert.Equal(2, step);
        Assert.Equal(fresh, weights);
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(3, 1)]
    [InlineData(3, 2)]
    public void The_next_save_finishes_or_drops_what_was_cut_short(int staged, int moved)
    {
        var (dir, _, _) = CutShort(staged, moved);
        var third = Save(dir, 3, 3);
        Assert.False(Directory.Exists(Path.Combine(dir, CheckpointDirectory.StagingDirectoryName)));
        var (step, weights) = Read(dir);
        Assert.Equal(3, step);
        Assert.Equal(third, weights);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Files_of_two_saves_put_together_are_refused(int replaced)
    {
        string dir = Path.Combine(root, "mixed" + replaced), other = Path.Combine(root, "other" + replaced);
        Save(dir, 1, 1);
        Save(other, 2, 2);
        File.Copy(Path.Combine(other, Files[replaced]), Path.Combine(dir, Files[replaced]), overwrite: true);
        var e = Assert.Throws<UserInputException>(() => Checkpoint.Load(dir, model, adam));
        Assert.Contains("holds a mixed checkpoint", e.Message);
        Assert.Contains(Files[replaced], e.Message);
        Assert.Contains("step 1", e.Message);
    }

    [Fact]
    public void A_checkpoint_without_save_names_loads_as_before()
    {
        // Written before saves were named, or a PyTorch model saved as a checkpoint: nothing to compare.
        string dir = Path.Combine(root, "unnamed");
        var weights = Save(dir, 4, 7);
        var path = Path.Combine(dir, CheckpointDirectory.ConfigFileName);
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        Assert.True(json.Remove("Id"));
        File.WriteAllText(path, json.ToJsonString());
        Assert.Null(Checkpoint.ReadConfig(dir).Id);
        var (step, read) = Read(dir);
        Assert.Equal(7, step);
        Assert.Equal(weights, read);
    }
}
