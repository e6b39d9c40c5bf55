using System.CommandLine;
using GateLoop.Runtime;

namespace GateLoop.Models.Commands;

/// <summary><c>gateloop models</c>: the declared models and SimpleGateLoop layers with their sizes.</summary>
static class ModelsCommand
{
    public static Command Create()
    {
        var command = new Command("models", "list the models and layers compiled into this binary");
        command.SetAction(_ =>
        {
            using var device = Device.Create("cpu");
            foreach (var entry in Catalog.All)
            {
                using var model = entry.Create(device);
                Console.WriteLine($"{entry.Name,-18} {model.ParameterCount,12:N0} parameters  {entry.Description}{(entry.Name == Catalog.Default ? "  (default)" : "")}");
            }
            foreach (var entry in Catalog.Layers)
            {
                using var layer = entry.Create(device);
                Console.WriteLine($"{entry.Name,-18} {layer.ParameterCount,12:N0} parameters  layer: {entry.Description} (gateloop bench --model {entry.Name})");
            }
            return 0;
        });
        return command;
    }
}
