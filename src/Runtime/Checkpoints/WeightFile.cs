namespace GateLoop.Runtime;

/// <summary>
/// A module's tensors in a safetensors file under their PyTorch names (float32): written from flat buffers in the
/// module's parameter layout and gathered back into them, checking names, shapes and values so a mismatch is
/// reported precisely.
/// </summary>
public static class WeightFile
{
    /// <summary>The metadata key naming the save that wrote a file, so that files of different saves are told apart.</summary>
    internal const string IdKey = "checkpoint";

    /// <summary>Writes the module's weights under their PyTorch names.</summary>
    public static void Save(Module<float> module, string path) => Write(path, module, [("", module.ReadWeights())], id: null);

    /// <summary>
    /// Loads weights written by <see cref="Save"/> or by PyTorch (<c>safetensors.torch.save_file(model.state_dict())</c>)
    /// into a module of the same shape.
    /// </summary>
    /// <exception cref="UserInputException">A tensor is missing, extra, of another shape, or holds non-finite values.</exception>
    public static void Load(Module<float> module, string path) => module.WriteWeights(Gather(module, SafeTensors.Read(path), "", path));

    /// <summary>
    /// Writes flat buffers laid out like <paramref name="module"/>'s parameters, each under its prefix (the optimizer's
    /// moments share one file), with the save's <paramref name="id"/> and further metadata.
    /// </summary>
    internal static void Write(string path, Module<float> module, IEnumerable<(string Prefix, float[] Flat)> buffers, string? id,
        params (string Key, string Value)[] metadata)
    {
        var entries = metadata.Append(("format", "pt")).ToDictionary(e => e.Item1, e => e.Item2);
        if (id is not null) entries[IdKey] = id;
        SafeTensors.Write(path, buffers.SelectMany(b => module.Parameters.Select(p =>
            (b.Prefix + p.Name, p.Shape, (ReadOnlyMemory<float>)b.Flat.AsMemory((int)p.Offset, (int)p.Length)))), entries);
    }

    /// <summary>The tensors named <paramref name="prefix"/> + a parameter's name, as one flat buffer in the module's layout.</summary>
    /// <exception cref="UserInputException">A tensor is missing, extra, of another shape, or holds non-finite values.</exception>
    internal static float[] Gather(Module<float> module, SafeTensorFile file, string prefix, string path)
    {
        var flat = new float[module.ParameterCount];
        var expected = module.Parameters.ToDictionary(p => prefix + p.Name);
        var missing = expected.Keys.Where(k => !file.Tensors.ContainsKey(k)).ToList();
        var extra = file.Tensors.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal) && !expected.ContainsKey(k)).ToList();
        if (missing.Count > 0 || extra.Count > 0)
            throw new UserInputException($"'{path}' does not fit model '{module.GetType().Name}': " +
                (missing.Count > 0 ? $"missing {Preview(missing)}" : "") + (missing.Count > 0 && extra.Count > 0 ? "; " : "") +
                (extra.Count > 0 ? $"unexpected {Preview(extra)}" : ""));
        foreach (var (name, p) in expected)
        {
            var tensor = file.Tensors[name];
            if (!tensor.Shape.SequenceEqual(p.Shape))
                throw new UserInputException(
                    $"'{path}': tensor {name} has shape [{string.Join(", ", tensor.Shape)}], the model needs {p.ShapeText}");
            // A diverged run's NaNs would only show later, as a NaN loss or a stray sampled byte.
            if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll<float>(tensor.Data))
                throw new UserInputException(
                    $"'{path}': tensor {name} holds values that are not finite (NaN or infinity): the run that wrote it diverged; use an earlier checkpoint");
            tensor.Data.CopyTo(flat, p.Offset);
        }
        return flat;
    }

    static string Preview(List<string> names) =>
        string.Join(", ", names.Take(5).Select(UserInputException.Printable)) + (names.Count > 5 ? $" and {names.Count - 5} more" : "");
}
