//! The exporter's graphs, decoded back and checked node by node.

use super::*;

fn layer(inputs: usize, outputs: usize, activation: Activation) -> OnnxLayer {
    OnnxLayer {
        inputs,
        outputs,
        weight: (0..inputs * outputs).map(|i| i as f32 * 0.01).collect(),
        bias: (0..outputs).map(|i| i as f32).collect(),
        activation,
    }
}

fn decode(bytes: &[u8]) -> ModelProto {
    ModelProto::decode(bytes).expect("written model decodes")
}

fn ops(g: &GraphProto) -> Vec<&str> {
    g.node.iter().map(|n| n.op_type.as_str()).collect()
}

fn dims(v: &ValueInfoProto) -> Vec<tensor_shape_proto::dimension::Value> {
    match &v.r#type.as_ref().unwrap().value {
        Some(type_proto::Value::TensorType(t)) => t
            .shape
            .as_ref()
            .unwrap()
            .dim
            .iter()
            .map(|d| d.value.clone().unwrap())
            .collect(),
        None => panic!("no tensor type"),
    }
}

#[test]
fn byte_classifier_round_trips() {
    let input = OnnxInput::Bytes {
        shape: vec![4, 3],
        mul: 1.0 / 255.0,
        add: -0.5,
    };
    let layers = [
        layer(12, 5, Activation::Relu),
        layer(5, 4, Activation::LeakyRelu { slope: 0.1 }),
        layer(4, 3, Activation::Identity),
    ];
    let m = decode(&to_onnx_bytes(
        &input,
        &layers,
        OnnxOutput::Softmax,
        "0.1.0",
    ));
    assert_eq!((m.ir_version, m.opset_import[0].version), (8, 17));
    assert_eq!(m.producer_version, "0.1.0");
    let g = m.graph.unwrap();
    assert_eq!(
        ops(&g),
        [
            "Cast",
            "Flatten",
            "Mul",
            "Add",
            "Gemm",
            "Relu",
            "Gemm",
            "LeakyRelu",
            "Gemm",
            "Softmax"
        ]
    );
    // Each node feeds the next (first input), starting at the graph input.
    let mut prev = "input".to_string();
    for n in &g.node {
        assert_eq!(n.input[0], prev, "node {}", n.name);
        prev = n.output[0].clone();
    }
    assert_eq!(prev, "probabilities");
    assert_eq!(g.output[0].name, "probabilities");

    let shapes: Vec<(&str, &[i64])> = g
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t.dims.as_slice()))
        .collect();
    assert_eq!(
        shapes,
        [
            ("scale/mul", &[][..]),
            ("shift/add", &[][..]),
            ("layer0/weight", &[12, 5][..]),
            ("layer0/bias", &[5][..]),
            ("layer1/weight", &[5, 4][..]),
            ("layer1/bias", &[4][..]),
            ("layer2/weight", &[4, 3][..]),
            ("layer2/bias", &[3][..]),
        ]
    );
    for t in &g.initializer {
        let n: i64 = t.dims.iter().product();
        assert_eq!(t.raw_data.len() as i64, 4 * n, "{}", t.name);
        assert_eq!(t.data_type, DATA_TYPE_FLOAT);
    }
    // Weights keep row-major order, little-endian.
    let w1 = &g.initializer[4].raw_data;
    assert_eq!(f32::from_le_bytes(w1[4..8].try_into().unwrap()), 0.01);

    use tensor_shape_proto::dimension::Value::{DimParam, DimValue};
    assert_eq!(
        dims(&g.input[0]),
        [DimParam("N".into()), DimValue(4), DimValue(3)]
    );
    assert_eq!(dims(&g.output[0]), [DimParam("N".into()), DimValue(3)]);
    let leaky = &g.node[7].attribute[0];
    assert_eq!(
        (leaky.name.as_str(), leaky.r#type, leaky.f),
        ("alpha", ATTR_FLOAT, 0.1)
    );
    let cast = &g.node[0].attribute[0];
    assert_eq!(
        (cast.name.as_str(), cast.r#type, cast.i),
        ("to", ATTR_INT, 1)
    );
}

#[test]
fn float_regressor_skips_noop_ops() {
    let input = OnnxInput::Floats {
        width: 3,
        mul: 1.0,
        add: 0.0,
    };
    let layers = [
        layer(3, 2, Activation::Tanh),
        layer(2, 1, Activation::Sigmoid),
    ];
    let g = decode(&to_onnx_bytes(&input, &layers, OnnxOutput::Identity, "x"))
        .graph
        .unwrap();
    assert_eq!(ops(&g), ["Gemm", "Tanh", "Gemm", "Sigmoid"]);
    assert_eq!(g.node.last().unwrap().output[0], "output");
    assert_eq!(g.output[0].name, "output");
}

#[test]
fn graph_with_no_ops_gets_identity() {
    let input = OnnxInput::Floats {
        width: 3,
        mul: 1.0,
        add: 0.0,
    };
    let g = decode(&to_onnx_bytes(&input, &[], OnnxOutput::Identity, "x"))
        .graph
        .unwrap();
    assert_eq!(ops(&g), ["Identity"]);
    assert_eq!(
        (g.node[0].input[0].as_str(), g.node[0].output[0].as_str()),
        ("input", "output")
    );
}

#[test]
fn one_dim_bytes_need_no_flatten() {
    let input = OnnxInput::Bytes {
        shape: vec![6],
        mul: 2.0,
        add: 0.0,
    };
    let layers = [layer(6, 2, Activation::Identity)];
    let g = decode(&to_onnx_bytes(&input, &layers, OnnxOutput::Softmax, "x"))
        .graph
        .unwrap();
    assert_eq!(ops(&g), ["Cast", "Mul", "Gemm", "Softmax"]);
}

#[test]
#[should_panic(expected = "layer 1: takes 4 inputs, previous width is 5")]
fn mismatched_layers_panic() {
    let input = OnnxInput::Floats {
        width: 3,
        mul: 1.0,
        add: 0.0,
    };
    let layers = [layer(3, 5, Activation::Relu), layer(4, 2, Activation::Relu)];
    to_onnx_bytes(&input, &layers, OnnxOutput::Softmax, "x");
}

#[test]
fn field_numbers_on_the_wire() {
    // ModelProto: ir_version is field 1 varint (0x08), producer_name field 2 (0x12).
    let m = ModelProto {
        ir_version: 8,
        producer_name: "b".into(),
        ..Default::default()
    };
    assert_eq!(m.encode_to_vec(), [0x08, 8, 0x12, 1, b'b']);
    // AttributeProto.type is field 20: key (20 << 3 | 0) = 160 = varint [0xa0, 0x01].
    let a = attr_int("axis", 1);
    let bytes = a.encode_to_vec();
    assert!(bytes.ends_with(&[0xa0, 0x01, ATTR_INT as u8]), "{bytes:?}");
    // dims are unpacked (one key per value), as onnx.proto (proto2) declares.
    let t = TensorProto {
        dims: vec![2, 3],
        ..Default::default()
    };
    assert_eq!(t.encode_to_vec(), [0x08, 2, 0x08, 3]);
}

#[test]
fn silu_and_a_sigmoid_output_get_their_nodes() {
    let input = OnnxInput::Floats {
        width: 2,
        mul: 1.0,
        add: 0.0,
    };
    let layers = [
        layer(2, 3, Activation::Silu),
        layer(3, 1, Activation::Identity),
    ];
    let g = decode(&to_onnx_bytes(&input, &layers, OnnxOutput::Sigmoid, "x"))
        .graph
        .unwrap();
    assert_eq!(ops(&g), ["Gemm", "Sigmoid", "Mul", "Gemm", "Sigmoid"]);
    // SiLU multiplies the layer's pre-activation by its sigmoid.
    assert_eq!(
        g.node[2].input,
        [g.node[0].output[0].clone(), g.node[1].output[0].clone()]
    );
    assert_eq!(g.output[0].name, "probabilities");
}

#[test]
fn export_takes_the_network_and_the_training_transform() {
    use crate::model::{Architecture, LayerSpec};
    let arch = Architecture {
        inputs: 6,
        input_shape: vec![2, 3],
        layers: vec![
            LayerSpec {
                outputs: 4,
                activation: Activation::Relu,
            },
            LayerSpec {
                outputs: 3,
                activation: Activation::Identity,
            },
        ],
        loss: Loss::SoftmaxCrossEntropy,
    };
    let mut net = Network::zeros(arch);
    net.params
        .iter_mut()
        .enumerate()
        .for_each(|(i, p)| *p = i as f32);
    let scaling = InputScaling {
        byte_scale: 1.0 / 255.0,
        mean: 0.1307,
        std: 0.3081,
    };
    let g = decode(&export(&net, &scaling, InputKind::Bytes).unwrap())
        .graph
        .unwrap();
    assert_eq!(
        ops(&g),
        ["Cast", "Flatten", "Mul", "Add", "Gemm", "Relu", "Gemm", "Softmax"]
    );
    let scalar = |name: &str| {
        let t = g.initializer.iter().find(|t| t.name == name).unwrap();
        f32::from_le_bytes(t.raw_data[..4].try_into().unwrap())
    };
    // Bit for bit the multiply-add that training applied to each byte.
    let (mul, add) = scaling.transform().byte_coefficients();
    assert_eq!((scalar("scale/mul"), scalar("shift/add")), (mul, add));
    let w1 = g
        .initializer
        .iter()
        .find(|t| t.name == "layer1/weight")
        .unwrap();
    assert_eq!(w1.dims, [4, 3]);
    assert_eq!(
        f32::from_le_bytes(w1.raw_data[..4].try_into().unwrap()),
        net.weight(1)[[0, 0]]
    );

    let floats = decode(&export(&net, &scaling, InputKind::Floats).unwrap())
        .graph
        .unwrap();
    assert_eq!(floats.node[0].op_type, "Mul");
    let mut bad = net.clone();
    bad.arch.input_shape = vec![5];
    let e = export(&bad, &scaling, InputKind::Bytes)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("input shape [5] does not hold its 6 inputs"),
        "{e}"
    );
}
